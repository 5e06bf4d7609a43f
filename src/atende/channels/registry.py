"""The channels this process serves, by kind: the app mounts their routes, intake applies
their conversation policy, delivery calls their ``send``, readiness checks their accounts'
credentials. ``atende.bootstrap.CHANNELS`` registers the built-in ones (one line each)."""

from __future__ import annotations

from atende.channels.base import Channel, ConversationPolicy
from atende.conversations import attachments
from atende.conversations import service as conversations
from atende.errors import InvalidInput

_CHANNELS: dict[str, Channel] = {}
KIND_MAX = 20  # the channel columns of contacts, conversations, messages


def register(channel: Channel) -> None:
    """Add (or replace) the channel of its kind."""
    kind = getattr(channel, "kind", "")
    if not kind or len(kind) > KIND_MAX or not kind.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"a channel's kind is a short name of letters, digits, '-' and '_': {kind!r}")
    if not isinstance(getattr(channel, "conversation_policy", None), ConversationPolicy):
        raise ValueError(f"channel {kind} declares no ConversationPolicy")
    _CHANNELS[kind] = channel
    conversations.set_live_channel(kind, channel.delivery == "live")  # its replies need no job
    conversations.set_reply_window(kind, channel.reply_window)
    attachments.set_types(kind, channel.attachment_types)


def unregister(kind: str) -> None:
    _CHANNELS.pop(kind, None)
    conversations.set_live_channel(kind, False)
    conversations.set_reply_window(kind, None)
    attachments.set_types(kind, {})


def find(kind: str) -> Channel | None:
    return _CHANNELS.get(kind)


def get(kind: str) -> Channel:
    """The channel of ``kind``, or a 422 naming the ones there are (for the accounts API)."""
    channel = _CHANNELS.get(kind)
    if channel is None:
        raise InvalidInput(f"no channel '{kind}'; there are: {', '.join(sorted(_CHANNELS))}", field="kind")
    return channel


def channels() -> list[Channel]:
    return list(_CHANNELS.values())
