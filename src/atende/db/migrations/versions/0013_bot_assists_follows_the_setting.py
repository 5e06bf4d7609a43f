"""atende_receive_message_v3: the bot's help while the team is closed follows the company's
setting as it is when the customer writes; ``conversations.bot_assists`` is dropped

Until now a handoff stamped ``bot_assists`` on the conversation from
``bot_answers_while_closed`` at that moment, so conversations already waiting when a company
turned the setting on never had the bot's help, though docs/HANDOFF.md promises it for any
conversation waiting for the team. v3 is v2 (migration 0007) reading the company's current
setting: with it on, a customer message to a conversation waiting for a person queues a bot
turn, and the turn answers only while the conversation's team is closed (and only what the
knowledge base covers).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SIGNATURE = "uuid, text, text, text, text, text, text, uuid, text, jsonb, text, text"

FUNCTION = r"""
CREATE FUNCTION atende_receive_message_v3(
    p_company uuid,
    p_channel text,
    p_external_id text,
    p_name text,
    p_email text,
    p_phone text,
    p_channel_message_id text,
    p_conversation uuid,
    p_text text,
    p_meta jsonb,
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
    v_now timestamptz := clock_timestamp();
    v_assists boolean;
BEGIN
    -- the company's setting as it is now, not as it was when the conversation was handed off
    SELECT coalesce(settings #> '{handoff,bot_answers_while_closed}' = 'true'::jsonb, false)
      INTO v_assists FROM companies WHERE id = p_company;
    v_assists := coalesce(v_assists, false);

    -- a redelivery changes nothing and answers with what was stored the first time
    IF p_channel_message_id IS NOT NULL THEN
        SELECT * INTO v_message FROM messages
         WHERE company_id = p_company AND channel = p_channel
           AND channel_message_id = p_channel_message_id;
        IF FOUND THEN
            SELECT state, state = 'bot' OR (state = 'waiting_human' AND v_assists)
              INTO o_state, o_bot_turn FROM conversations
             WHERE company_id = p_company AND id = v_message.conversation_id;
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

    IF p_conversation IS NULL THEN
        SELECT * INTO v_conversation FROM conversations
         WHERE company_id = p_company AND contact_id = v_contact.id AND channel = p_channel
         ORDER BY updated_at DESC LIMIT 1
           FOR UPDATE;
    ELSE
        SELECT * INTO v_conversation FROM conversations
         WHERE company_id = p_company AND id = p_conversation
           FOR UPDATE;
    END IF;

    IF v_conversation.id IS NULL THEN
        INSERT INTO conversations (id, created_at, company_id, contact_id, channel, state, updated_at)
        VALUES (gen_random_uuid(), v_now, p_company, v_contact.id, p_channel, 'bot', v_now)
        RETURNING * INTO v_conversation;
        INSERT INTO state_transitions
               (id, created_at, company_id, conversation_id, from_state, to_state, actor_type)
        VALUES (gen_random_uuid(), v_now, p_company, v_conversation.id, 'new', 'bot', 'customer');
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
          FROM atende_receive_message_v3(p_company, p_channel, p_external_id, p_name, p_email, p_phone,
                                         p_channel_message_id, p_conversation, p_text, p_meta,
                                         p_turn_task, p_deliver_task);
        RETURN;
    END IF;

    -- a customer writing reopens a resolved conversation (states.state_after_customer_message)
    v_previous := v_conversation.state;
    IF v_previous = 'resolved' THEN
        INSERT INTO state_transitions
               (id, created_at, company_id, conversation_id, from_state, to_state, actor_type, reason)
        VALUES (gen_random_uuid(), v_now, p_company, v_conversation.id, 'resolved', 'bot', 'customer',
                'customer wrote again');
        v_conversation.state := 'bot';
        PERFORM pg_notify('atende', json_build_object(
            'topic', v_conversation.id::text, 'kind', 'state', 'state', 'bot')::text);
        PERFORM atende_emit_webhook_v1(p_company, 'conversation.state_changed',
            jsonb_build_object('conversation_id', v_conversation.id::text, 'from', 'resolved', 'to', 'bot'),
            p_deliver_task);
    END IF;
    UPDATE conversations SET state = v_conversation.state, updated_at = v_now
     WHERE company_id = p_company AND id = v_conversation.id;

    -- the bot answers while it owns the conversation; in one waiting for a person, when the
    -- company lets it answer knowledge-base questions while the team is closed, a turn is
    -- queued too and decides (business hours are Python's) whether the team is closed now
    o_bot_turn := v_conversation.state = 'bot'
                  OR (v_conversation.state = 'waiting_human' AND v_assists);
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


def _migration_0007() -> ModuleType:
    path = Path(__file__).with_name("0007_business_hours_handoff.py")
    spec = importlib.util.spec_from_file_location("m0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(f"DROP FUNCTION atende_receive_message_v2({SIGNATURE})")
    op.drop_column("conversations", "bot_assists")


def downgrade() -> None:
    # v2 reads the stamp again: conversations waiting now get it from the setting as it is
    op.add_column(
        "conversations", sa.Column("bot_assists", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.execute(
        "UPDATE conversations c SET bot_assists = true FROM companies co"
        " WHERE co.id = c.company_id AND c.state = 'waiting_human'"
        " AND co.settings #> '{handoff,bot_answers_while_closed}' = 'true'::jsonb"
    )
    op.execute(_migration_0007().FUNCTION)
    op.execute(f"DROP FUNCTION atende_receive_message_v3({SIGNATURE})")
