"""atende_receive_message_v4: the intake rules come from Python; e-mail threads; messages that
do not reopen a resolved conversation

v3 (migration 0013) hard-coded the rules of intake beside their Python twins: a customer's
first message opens a conversation in ``bot``, a message reopens a resolved conversation to
``bot``, a bot turn is queued in ``bot`` (and in ``waiting_human`` when the company lets the
bot help while the team is closed). v4 hard-codes none of them: the caller passes them
(``atende.conversations.states`` holds the rules, ``conversations.service`` turns them into
these arguments, ``tests/conversations/test_intake_rules.py`` holds the two to one
behaviour for every state, setting and policy):

- ``p_opens_in``: the state a conversation opened by this message starts in;
- ``p_moves``: ``{state: state}``, where a customer message moves its conversation (``{}``
  for a message that must not reopen a resolved one: a rating, a delivery receipt; it is
  stored and changes no state);
- ``p_turn_states``: the states whose messages get a bot turn; ``p_turn_states_helping``:
  the same when the company's ``handoff.bot_answers_while_closed`` is on. The company is read
  only when the two disagree on the conversation's state (v3 read it for every message).

A channel whose messages join their thread (e-mail) passes ``p_thread_refs`` (its
``In-Reply-To``/``References``; ``NULL`` for other channels): the message joins the
conversation of the contact's newest message on the channel whose ``channel_message_id`` or
``provider_message_id`` (a reply we sent) is one of them, and with none or no match it opens
a new conversation. Both lookups are index scans of the unique ``(company_id, channel,
channel_message_id)`` and 0016's ``(company_id, channel, provider_message_id)``.

A conversation the message opened is not written a second time (v3 updated the row it had
just inserted).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SIGNATURE = (
    "uuid, text, text, text, text, text, text, uuid, text[], text, jsonb, text, jsonb, text[], text[], text, text"
)

FUNCTION = r"""
CREATE FUNCTION atende_receive_message_v4(
    p_company uuid,
    p_channel text,
    p_external_id text,
    p_name text,
    p_email text,
    p_phone text,
    p_channel_message_id text,
    p_conversation uuid,             -- the conversation the channel names, or NULL
    p_thread_refs text[],            -- NULL: not threaded; else the ids the message answers
    p_text text,
    p_meta jsonb,
    p_opens_in text,                 -- the state of a conversation this message opens
    p_moves jsonb,                   -- {state: state} a customer message moves its conversation to
    p_turn_states text[],            -- states whose messages get a bot turn
    p_turn_states_helping text[],    -- the same, when the company lets the bot help while closed
    p_turn_task text,
    p_deliver_task text,
    OUT o_outcome text,              -- stored | duplicate | no_conversation
    OUT o_state text,                -- the conversation's state afterwards
    OUT o_bot_turn boolean,          -- whether a bot turn is queued for it (it may stay silent)
    OUT o_id uuid,
    OUT o_seq bigint,
    OUT o_conversation_id uuid,
    OUT o_channel text,
    OUT o_channel_message_id text,
    OUT o_author text,
    OUT o_text text,
    OUT o_language text,
    OUT o_reply_to_id uuid,
    OUT o_meta jsonb,
    OUT o_created_at timestamptz
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_contact contacts%ROWTYPE;
    v_conversation conversations%ROWTYPE;
    v_message messages%ROWTYPE;
    v_previous text;
    v_opened boolean := false;
    v_helps boolean;
    v_now timestamptz := clock_timestamp();
BEGIN
    -- a redelivery changes nothing and answers with what was stored the first time
    IF p_channel_message_id IS NOT NULL THEN
        SELECT * INTO v_message FROM messages
         WHERE company_id = p_company AND channel = p_channel
           AND channel_message_id = p_channel_message_id;
        IF FOUND THEN
            SELECT state INTO o_state FROM conversations
             WHERE company_id = p_company AND id = v_message.conversation_id;
            SELECT coalesce(settings #> '{handoff,bot_answers_while_closed}' = 'true'::jsonb, false)
              INTO v_helps FROM companies WHERE id = p_company;
            o_bot_turn := o_state = ANY(CASE WHEN coalesce(v_helps, false)
                                             THEN p_turn_states_helping ELSE p_turn_states END);
            o_outcome := 'duplicate';
            SELECT v_message.id, v_message.seq, v_message.conversation_id, v_message.channel,
                   v_message.channel_message_id, v_message.author, v_message.text,
                   v_message.language, v_message.reply_to_id, v_message.meta, v_message.created_at
              INTO o_id, o_seq, o_conversation_id, o_channel, o_channel_message_id, o_author,
                   o_text, o_language, o_reply_to_id, o_meta, o_created_at;
            RETURN;
        END IF;
    END IF;

    -- a conversation named by the caller must be this contact's: check before writing anything
    -- (locks come below, contact before conversation, the order every intake takes them in)
    IF p_conversation IS NOT NULL THEN
        PERFORM FROM conversations conv JOIN contacts c ON c.id = conv.contact_id
         WHERE conv.company_id = p_company AND conv.id = p_conversation
           AND c.company_id = p_company AND c.channel = p_channel AND c.external_id = p_external_id;
        IF NOT FOUND THEN
            o_outcome := 'no_conversation';
            RETURN;
        END IF;
    END IF;

    -- the contact, locked until commit: two first messages of one customer take turns and
    -- share one conversation. Locking an existing row writes no new row version; the upsert
    -- (which also locks) is only for a contact seen for the first time. NO KEY UPDATE, not
    -- UPDATE: a transaction holding one of this contact's conversations may still need its
    -- foreign-key check on the contact (KEY SHARE), which FOR UPDATE would block: a deadlock.
    SELECT * INTO v_contact FROM contacts
     WHERE company_id = p_company AND channel = p_channel AND external_id = p_external_id
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        INSERT INTO contacts AS c (id, created_at, company_id, channel, external_id, name, email, phone)
        VALUES (gen_random_uuid(), v_now, p_company, p_channel, p_external_id, p_name, p_email, p_phone)
        ON CONFLICT (company_id, channel, external_id) DO UPDATE
           SET name = coalesce(excluded.name, c.name),
               email = coalesce(excluded.email, c.email),
               phone = coalesce(excluded.phone, c.phone)
        RETURNING * INTO v_contact;
    ELSIF coalesce(p_name, v_contact.name) IS DISTINCT FROM v_contact.name
       OR coalesce(p_email, v_contact.email) IS DISTINCT FROM v_contact.email
       OR coalesce(p_phone, v_contact.phone) IS DISTINCT FROM v_contact.phone THEN
        UPDATE contacts
           SET name = coalesce(p_name, name), email = coalesce(p_email, email), phone = coalesce(p_phone, phone)
         WHERE company_id = p_company AND id = v_contact.id;
    END IF;

    IF p_conversation IS NOT NULL THEN
        SELECT * INTO v_conversation FROM conversations
         WHERE company_id = p_company AND id = p_conversation
           FOR UPDATE;
    ELSIF p_thread_refs IS NOT NULL THEN
        -- a reply joins its thread: the conversation of the contact's newest message on the
        -- channel it refers to (a customer's message by its channel id, one we sent by the
        -- provider's id); a ref to another contact's message finds nothing. A new thread, or
        -- one we never saw, opens a new conversation (below). The referred messages first,
        -- by the two (company_id, channel, ...) indexes: planned freely, the join would read
        -- every message of the contact's conversations instead
        IF cardinality(p_thread_refs) > 0 THEN
            SELECT * INTO v_conversation FROM conversations
             WHERE company_id = p_company AND id = (
                   WITH referred AS MATERIALIZED (
                        SELECT conversation_id, seq FROM messages
                         WHERE company_id = p_company AND channel = p_channel
                           AND (channel_message_id = ANY(p_thread_refs)
                                OR provider_message_id = ANY(p_thread_refs)))
                   SELECT r.conversation_id FROM referred r JOIN conversations c ON c.id = r.conversation_id
                    WHERE c.company_id = p_company AND c.contact_id = v_contact.id
                    ORDER BY r.seq DESC LIMIT 1)
               FOR UPDATE;
        END IF;
    ELSE
        SELECT * INTO v_conversation FROM conversations
         WHERE company_id = p_company AND contact_id = v_contact.id AND channel = p_channel
         ORDER BY updated_at DESC LIMIT 1
           FOR UPDATE;
    END IF;

    IF v_conversation.id IS NULL THEN
        INSERT INTO conversations (id, created_at, company_id, contact_id, channel, state, updated_at)
        VALUES (gen_random_uuid(), v_now, p_company, v_contact.id, p_channel, p_opens_in, v_now)
        RETURNING * INTO v_conversation;
        INSERT INTO state_transitions
               (id, created_at, company_id, conversation_id, from_state, to_state, actor_type)
        VALUES (gen_random_uuid(), v_now, p_company, v_conversation.id, 'new', p_opens_in, 'customer');
        v_opened := true;
    END IF;

    INSERT INTO messages AS m
           (id, created_at, company_id, conversation_id, channel, channel_message_id, author, text, meta)
    VALUES (gen_random_uuid(), v_now, p_company, v_conversation.id, p_channel, p_channel_message_id,
            'customer', p_text, coalesce(p_meta, '{}'::jsonb))
    ON CONFLICT (company_id, channel, channel_message_id) DO NOTHING
    RETURNING * INTO v_message;
    IF v_message.id IS NULL THEN
        -- the same redelivery arrived concurrently and won: report what it stored
        SELECT * INTO o_outcome, o_state, o_bot_turn, o_id, o_seq, o_conversation_id, o_channel,
               o_channel_message_id, o_author, o_text, o_language, o_reply_to_id, o_meta, o_created_at
          FROM atende_receive_message_v4(p_company, p_channel, p_external_id, p_name, p_email, p_phone,
                                         p_channel_message_id, p_conversation, p_thread_refs, p_text,
                                         p_meta, p_opens_in, p_moves, p_turn_states,
                                         p_turn_states_helping, p_turn_task, p_deliver_task);
        RETURN;
    END IF;

    IF NOT v_opened THEN
        -- the state the message moves its conversation to (states.state_after_customer_message)
        v_previous := v_conversation.state;
        v_conversation.state := coalesce(p_moves ->> v_previous, v_previous);
        IF v_conversation.state <> v_previous THEN
            INSERT INTO state_transitions
                   (id, created_at, company_id, conversation_id, from_state, to_state, actor_type, reason)
            VALUES (gen_random_uuid(), v_now, p_company, v_conversation.id, v_previous,
                    v_conversation.state, 'customer', 'customer wrote again');
            PERFORM pg_notify('atende', json_build_object(
                'topic', v_conversation.id::text, 'kind', 'state', 'state', v_conversation.state)::text);
            PERFORM atende_emit_webhook_v1(p_company, 'conversation.state_changed',
                jsonb_build_object('conversation_id', v_conversation.id::text,
                                   'from', v_previous, 'to', v_conversation.state),
                p_deliver_task);
        END IF;
        UPDATE conversations SET state = v_conversation.state, updated_at = v_now
         WHERE company_id = p_company AND id = v_conversation.id;
    END IF;

    -- whether the message gets a bot turn (states.bot_turn_follows); the company's setting,
    -- as it is now, is read only when it decides
    IF (v_conversation.state = ANY(p_turn_states)) = (v_conversation.state = ANY(p_turn_states_helping)) THEN
        o_bot_turn := v_conversation.state = ANY(p_turn_states);
    ELSE
        SELECT coalesce(settings #> '{handoff,bot_answers_while_closed}' = 'true'::jsonb, false)
          INTO v_helps FROM companies WHERE id = p_company;
        o_bot_turn := v_conversation.state = ANY(CASE WHEN coalesce(v_helps, false)
                                                      THEN p_turn_states_helping ELSE p_turn_states END);
    END IF;
    IF o_bot_turn THEN
        PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
            'default', p_turn_task, 0, 'conversation:' || v_conversation.id::text, NULL,
            jsonb_build_object('company_id', p_company::text, 'message_id', v_message.id::text),
            NULL)::procrastinate_job_to_defer_v1]);
    END IF;

    PERFORM pg_notify('atende', json_build_object(
        'topic', v_conversation.id::text, 'kind', 'message', 'seq', v_message.seq)::text);
    PERFORM atende_emit_webhook_v1(p_company, 'message.created', jsonb_build_object(
        'id', v_message.id::text,
        'conversation_id', v_conversation.id::text,
        'author', v_message.author,
        'text', v_message.text,
        'channel', v_message.channel,
        'created_at', atende_isoformat_v1(v_message.created_at)), p_deliver_task);

    o_outcome := 'stored';
    o_state := v_conversation.state;
    SELECT v_message.id, v_message.seq, v_message.conversation_id, v_message.channel,
           v_message.channel_message_id, v_message.author, v_message.text,
           v_message.language, v_message.reply_to_id, v_message.meta, v_message.created_at
      INTO o_id, o_seq, o_conversation_id, o_channel, o_channel_message_id, o_author,
           o_text, o_language, o_reply_to_id, o_meta, o_created_at;
END;
$$;
"""


def _migration_0013() -> ModuleType:
    path = Path(__file__).with_name("0013_bot_assists_follows_the_setting.py")
    spec = importlib.util.spec_from_file_location("m0013", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(f"DROP FUNCTION atende_receive_message_v3({_migration_0013().SIGNATURE})")


def downgrade() -> None:
    op.execute(_migration_0013().FUNCTION)
    op.execute(f"DROP FUNCTION atende_receive_message_v4({SIGNATURE})")
