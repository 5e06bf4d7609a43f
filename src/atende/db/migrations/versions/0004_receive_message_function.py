"""receive a customer message in one statement; drop company_id indexes a composite covers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

``atende_receive_message_v1`` does, in one round trip and one transaction, what receiving a
customer message means (see ``atende.conversations.service.receive_inbound``): skip a
redelivered channel message id, upsert the contact, find (and lock) or open its
conversation, store the message, reopen a resolved conversation, queue the bot turn and the
webhook deliveries (procrastinate's ``procrastinate_defer_jobs_v1``, schema pinned by 0002)
and notify live listeners. Every statement is scoped to ``p_company``.

A later change to this function is a new migration with ``atende_receive_message_v2``.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE FUNCTION atende_receive_message_v1(
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
BEGIN
    -- a redelivery changes nothing and answers with what was stored the first time
    IF p_channel_message_id IS NOT NULL THEN
        SELECT * INTO v_message FROM messages
         WHERE company_id = p_company AND channel = p_channel
           AND channel_message_id = p_channel_message_id;
        IF FOUND THEN
            SELECT state INTO o_state FROM conversations
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
        SELECT * INTO o_outcome, o_state, o_id, o_seq, o_conversation_id, o_channel,
               o_channel_message_id, o_author, o_text, o_language, o_reply_to_id, o_meta, o_created_at
          FROM atende_receive_message_v1(p_company, p_channel, p_external_id, p_name, p_email, p_phone,
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

    IF v_conversation.state = 'bot' THEN
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

# Python's datetime.isoformat() of a UTC instant, whatever the session's TimeZone
ISOFORMAT = r"""
CREATE FUNCTION atende_isoformat_v1(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00';
"""

# the SQL twin of atende.webhooks.service.emit (a test holds the two to the same payload)
EMIT = r"""
CREATE FUNCTION atende_emit_webhook_v1(p_company uuid, p_event text, p_data jsonb, p_deliver_task text)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_endpoint uuid;
    v_delivery uuid;
    v_count integer := 0;
BEGIN
    FOR v_endpoint IN
        SELECT id FROM webhook_endpoints
         WHERE company_id = p_company AND enabled AND events @> ARRAY[p_event]::varchar[]
    LOOP
        v_delivery := gen_random_uuid();
        INSERT INTO webhook_deliveries
               (id, created_at, company_id, endpoint_id, event_type, payload, status, attempts)
        VALUES (v_delivery, clock_timestamp(), p_company, v_endpoint, p_event,
                jsonb_build_object('type', p_event, 'company_id', p_company::text,
                                   'created_at', atende_isoformat_v1(clock_timestamp()),
                                   'data', p_data, 'id', v_delivery::text),
                'pending', 0);
        PERFORM procrastinate_defer_jobs_v1(ARRAY[ROW(
            'default', p_deliver_task, 0, NULL, NULL,
            jsonb_build_object('company_id', p_company::text, 'delivery_id', v_delivery::text),
            NULL)::procrastinate_job_to_defer_v1]);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END;
$$;
"""


# each of these tables has a composite index that starts with company_id
REDUNDANT_INDEXES = ("ix_contacts_company_id", "ix_conversations_company_id", "ix_messages_company_id")


def upgrade() -> None:
    for index in REDUNDANT_INDEXES:
        op.drop_index(index)
    op.execute(ISOFORMAT)
    op.execute(EMIT)
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS atende_receive_message_v1(uuid, text, text, text, text, text, text, uuid,"
        " text, jsonb, text, text)"
    )
    op.execute("DROP FUNCTION IF EXISTS atende_emit_webhook_v1(uuid, text, jsonb, text)")
    op.execute("DROP FUNCTION IF EXISTS atende_isoformat_v1(timestamptz)")
    for index in REDUNDANT_INDEXES:
        table = index.removeprefix("ix_").removesuffix("_company_id")
        op.create_index(index, table, ["company_id"])
