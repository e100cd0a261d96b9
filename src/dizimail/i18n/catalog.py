"""The message catalogue: key → {"en": ..., "zh_CN": ...}."""

from __future__ import annotations

CATALOG: dict[str, dict[str, str]] = {
    "auth_failed": {"en": "Authentication failed", "zh_CN": "认证失败"},
    "locked_out": {"en": "Too many failed logins from your address; try again later",
                   "zh_CN": "您的地址登录失败次数过多，请稍后再试"},
    "too_many_connections": {"en": "Too many connections from your address",
                             "zh_CN": "来自您地址的连接过多"},
    "quota_exceeded": {"en": "Mailbox full", "zh_CN": "邮箱已满"},
    "temporary_failure": {"en": "Temporary failure, please try again later", "zh_CN": "暂时失败，请稍后重试"},
    "maildrop_in_use": {"en": "Mailbox is in use by another session", "zh_CN": "邮箱正被另一个会话使用"},
    "unknown_domain": {"en": "Unknown domain", "zh_CN": "未知域名"},
    "domain_exists": {"en": "Domain already exists", "zh_CN": "域名已存在"},
    "domain_is_alias": {"en": "That domain is an alias of another domain", "zh_CN": "该域名是另一个域名的别名"},
    "domain_not_empty": {"en": "Domain still has users or aliases", "zh_CN": "域名下仍有用户或别名"},
    "unknown_user": {"en": "Unknown user", "zh_CN": "未知用户"},
    "user_exists": {"en": "User already exists", "zh_CN": "用户已存在"},
    "address_is_alias": {"en": "That address is already an alias", "zh_CN": "该地址已是别名"},
    "address_is_user": {"en": "That address is already a user", "zh_CN": "该地址已是用户"},
    "unknown_alias": {"en": "Unknown alias", "zh_CN": "未知别名"},
    "alias_needs_target": {"en": "An alias needs at least one target", "zh_CN": "别名至少需要一个目标地址"},
    "bad_address": {"en": "Invalid e-mail address", "zh_CN": "无效的电子邮件地址"},
    "bad_domain": {"en": "Invalid domain name", "zh_CN": "无效的域名"},
    "bad_quota": {"en": "Invalid quota", "zh_CN": "无效的配额"},
    "empty_password": {"en": "Password must not be empty", "zh_CN": "密码不能为空"},
    "unknown_route": {"en": "No route for that domain", "zh_CN": "该域名没有路由"},
    "bad_route": {"en": "Invalid route: use HOST[:PORT] or hold:USER", "zh_CN": "无效的路由：请使用 HOST[:PORT] 或 hold:用户"},
    "unknown_network": {"en": "That network is not listed", "zh_CN": "该网络不在列表中"},
    "bad_network": {"en": "Invalid network (use an address or CIDR such as 10.0.0.0/8)",
                    "zh_CN": "无效的网络（请使用地址或 CIDR，例如 10.0.0.0/8）"},
    "open_relay_refused": {"en": "Refusing to allow relaying for every address (that makes an open relay)",
                           "zh_CN": "拒绝允许所有地址转发（那将成为开放中继）"},
    "unknown_queue_id": {"en": "No such message in the queue", "zh_CN": "队列中没有该邮件"},
    "fetch_exists": {"en": "That mailbox is already being fetched", "zh_CN": "该邮箱已在收取中"},
    "unknown_fetch": {"en": "No such fetch account", "zh_CN": "没有该收取账户"},
    "bad_setting": {"en": "Invalid value", "zh_CN": "无效的值"},
    "precondition_failed": {"en": "The change was not made: its condition no longer holds",
                            "zh_CN": "未执行更改：其前提条件已不成立"},
    # Policy decisions (services.policy): {rcpt}, {user} are filled in from the verdict.
    "auth_required": {"en": "Authentication required", "zh_CN": "需要先登录认证"},
    "sender_not_owned": {"en": "Sender address rejected: not owned by user {user}",
                         "zh_CN": "发件人地址被拒绝：不属于用户 {user}"},
    "message_too_big": {"en": "Message size exceeds fixed maximum message size", "zh_CN": "邮件大小超过了允许的最大值"},
    "too_many_recipients": {"en": "Too many recipients", "zh_CN": "收件人过多"},
    "rcpt_unknown": {"en": "<{rcpt}>: Recipient address rejected: User unknown",
                     "zh_CN": "<{rcpt}>：收件人地址被拒绝：用户不存在"},
    "rcpt_disabled": {"en": "<{rcpt}>: Recipient address rejected: Mailbox disabled",
                      "zh_CN": "<{rcpt}>：收件人地址被拒绝：邮箱已停用"},
    "relay_denied": {"en": "<{rcpt}>: Relay access denied", "zh_CN": "<{rcpt}>：拒绝转发"},
    "mailbox_full": {"en": "<{rcpt}>: Mailbox full", "zh_CN": "<{rcpt}>：邮箱已满"},
    "bare_lf": {"en": "Message contains bare LF line endings", "zh_CN": "邮件含有单独的 LF 换行符"},
    "line_too_long": {"en": "Message contains an over-long line", "zh_CN": "邮件含有过长的行"},
    "too_many_hops": {"en": "Too many hops: the message carries too many Received: fields (a mail loop?)",
                      "zh_CN": "转发次数过多：邮件的 Received: 头过多（可能是邮件循环）"},
    "mail_loop": {"en": "Mail loop detected: this message has passed through this server before",
                  "zh_CN": "检测到邮件循环：该邮件之前已经过本服务器"},
    "secret_unreadable": {"en": "A stored password cannot be decrypted (check storage.master_key)",
                          "zh_CN": "无法解密已保存的密码（请检查 storage.master_key）"},
}


def translate(key: str, lang: str = "en") -> str:
    entry = CATALOG.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["en"]
