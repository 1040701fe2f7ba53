"""SQL of console users. Builds statements; runs nothing."""

from __future__ import annotations

from quanyu.engine import statement

_COLUMNS = "id, login, name, role, isv_id, tenant_id, created_at, disabled_at, last_sign_in_at"

INSERT_USER = statement(
    "tenancy.insert_console_user",
    "INSERT INTO console_users (id, login, name, password_hash, role, isv_id, tenant_id,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    tenant_scoped=False,  # users of an ISV span its tenants; access is checked per tenant
)
USER_BY_LOGIN = statement(
    "tenancy.console_user_by_login",
    f"SELECT {_COLUMNS}, password_hash FROM console_users WHERE login = ?",
    tenant_scoped=False,
)
GET_USER = statement(
    "tenancy.get_console_user",
    f"SELECT {_COLUMNS} FROM console_users WHERE id = ?",
    tenant_scoped=False,
)
LIST_USERS = statement(
    "tenancy.list_console_users",
    f"SELECT {_COLUMNS} FROM console_users"
    " WHERE (CAST(? AS VARCHAR) IS NULL OR tenant_id = ?)"
    " AND (CAST(? AS VARCHAR) IS NULL OR isv_id = ?) ORDER BY login",
    tenant_scoped=False,
)
SET_PASSWORD = statement(
    "tenancy.set_console_password",
    "UPDATE console_users SET password_hash = ? WHERE id = ?",
    tenant_scoped=False,
)
DISABLE_USER = statement(
    "tenancy.disable_console_user",
    "UPDATE console_users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL",
    tenant_scoped=False,
)
SIGNED_IN = statement(
    "tenancy.console_user_signed_in",
    "UPDATE console_users SET last_sign_in_at = ? WHERE id = ?",
    tenant_scoped=False,
)
