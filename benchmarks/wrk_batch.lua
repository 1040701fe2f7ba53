-- POST a Segment batch whose messageIds are unique per request (so nothing dedups away).
local template = nil
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  run_id = args[3]
  local f = assert(io.open(args[1], "rb"))
  template = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Basic " .. args[2]
end

function request()
  counter = counter + 1
  local body = template:gsub("@@", run_id .. "x" .. thread_id .. "x" .. counter)
  return wrk.format(nil, nil, nil, body)
end
