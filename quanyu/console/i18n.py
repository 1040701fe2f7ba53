"""Interface text in Chinese and English.

Each page module registers its own messages with :func:`register`; templates call
``t("key")``. A key missing in a language falls back to English, then to the key itself,
so a missing translation shows but never breaks a page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

LANGUAGES = ("zh", "en")

_MESSAGES: dict[str, dict[str, str]] = {"zh": {}, "en": {}}


def register(messages: Mapping[str, tuple[str, str]]) -> None:
    """Add ``{key: (chinese, english)}``; a key registered twice must say the same."""
    for key, (zh, en) in messages.items():
        if _MESSAGES["en"].get(key, en) != en or _MESSAGES["zh"].get(key, zh) != zh:
            raise ValueError(f"console message {key!r} is registered twice with other text")
        _MESSAGES["zh"][key] = zh
        _MESSAGES["en"][key] = en


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` for ``lang``: the text with ``{name}`` fields filled in."""
    table = _MESSAGES.get(lang, _MESSAGES["en"])

    def t(key: str, **values: object) -> str:
        text = table.get(key) or _MESSAGES["en"].get(key) or key
        return text.format(**values) if values else text

    return t


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice, else Chinese when the browser prefers it, else English."""
    if cookie in LANGUAGES:
        return cookie
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


register(
    {
        "app.name": ("全域 Quanyu", "Quanyu"),
        "nav.home": ("首页", "Home"),
        "nav.sources": ("数据源与密钥", "Sources & keys"),
        "nav.profiles": ("用户画像", "Profiles"),
        "nav.tags": ("标签", "Tags"),
        "nav.audiences": ("人群", "Audiences"),
        "nav.consent": ("授权同意", "Consent"),
        "nav.codes": ("一物一码", "Codes"),
        "nav.audit": ("审计日志", "Audit log"),
        "nav.sign_out": ("退出", "Sign out"),
        "nav.tenant": ("租户", "Tenant"),
        "sign_in.title": ("登录", "Sign in"),
        "sign_in.login": ("账号", "Login"),
        "sign_in.password": ("密码", "Password"),
        "sign_in.submit": ("登录", "Sign in"),
        "sign_in.no_tenant": (
            "此账号没有可访问的租户。",
            "This user has no tenant to open.",
        ),
        "error.title": ("出错了", "Something went wrong"),
        "error.back": ("返回首页", "Back to the home page"),
        "common.save": ("保存", "Save"),
        "common.create": ("创建", "Create"),
        "common.cancel": ("取消", "Cancel"),
        "common.search": ("搜索", "Search"),
        "common.none": ("暂无", "None yet"),
        "common.count": ("人数", "Count"),
        "common.time": ("时间", "Time"),
        "common.name": ("名称", "Name"),
        "common.status": ("状态", "Status"),
        "common.actions": ("操作", "Actions"),
        "common.more": ("更多", "More"),
    }
)
