"""Business hours and the human handoff: teams, agent availability, personal API keys, the
conversation's queue fields, and ``atende_receive_message_v2``

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

``atende_receive_message_v2`` is v1 (migration 0004) with two changes: a customer message to a
conversation waiting as a ticket with ``bot_assists`` set also queues a bot turn (the bot
answers knowledge-base questions while the team is closed, when the company allows it), and it
says whether a bot turn answers the message (``o_bot_turn``), so that callers need not re-derive
the rule. Conversations already waiting for a person get ``waiting_since`` from their last
update.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE FUNCTION atende_receive_message_v2(
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
    OUT o_bot_turn boolean,          -- whether a bot turn answers this message
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
            SELECT state, state = 'bot' OR (state = 'waiting_human' AND bot_assists)
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
          FROM atende_receive_message_v2(p_company, p_channel, p_external_id, p_name, p_email, p_phone,
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

    -- the bot answers while it owns the conversation, and while a ticket waits for the team
    -- outside business hours when the company lets it answer knowledge-base questions meanwhile
    o_bot_turn := v_conversation.state = 'bot'
                  OR (v_conversation.state = 'waiting_human' AND v_conversation.bot_assists);
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


V1_SIGNATURE = "uuid, text, text, text, text, text, text, uuid, text, jsonb, text, text"


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("hours", sa.dialects.postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_teams_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("company_id", "slug", name=op.f("uq_teams_company_id")),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_team_members_company_id_companies"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_members_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_team_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_company_id"), "team_members", ["company_id"])
    op.create_index(op.f("ix_team_members_user_id"), "team_members", ["user_id"])
    op.add_column(
        "memberships", sa.Column("availability", sa.String(length=10), server_default="offline", nullable=False)
    )
    op.add_column("memberships", sa.Column("availability_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("user_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_api_keys_user_id_users"), "api_keys", "users", ["user_id"], ["id"], ondelete="CASCADE"
    )
    op.add_column("conversations", sa.Column("team_id", sa.UUID(), nullable=True))
    op.add_column("conversations", sa.Column("assignee_id", sa.UUID(), nullable=True))
    op.add_column("conversations", sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("conversations", sa.Column("ticket", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column(
        "conversations", sa.Column("bot_assists", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_foreign_key(
        op.f("fk_conversations_team_id_teams"), "conversations", "teams", ["team_id"], ["id"], ondelete="SET NULL"
    )
    op.create_foreign_key(
        op.f("fk_conversations_assignee_id_users"),
        "conversations",
        "users",
        ["assignee_id"],
        ["id"],
        ondelete="SET NULL",
    )
    # the queue: a company's conversations waiting for a person, oldest first
    op.create_index(
        "ix_conversations_queue",
        "conversations",
        ["company_id", "waiting_since"],
        postgresql_where=sa.text("state = 'waiting_human'"),
    )
    op.execute(
        "UPDATE conversations SET waiting_since = updated_at"
        " WHERE state = 'waiting_human' AND waiting_since IS NULL"
    )
    op.execute(FUNCTION)
    op.execute(f"DROP FUNCTION atende_receive_message_v1({V1_SIGNATURE})")


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("m0004", Path(__file__).with_name("0004_receive_message_function.py"))
    assert spec is not None and spec.loader is not None
    m0004 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m0004)
    op.execute(f"DROP FUNCTION atende_receive_message_v2({V1_SIGNATURE})")
    op.execute(m0004.FUNCTION)
    op.drop_index("ix_conversations_queue", table_name="conversations")
    op.drop_constraint(op.f("fk_conversations_assignee_id_users"), "conversations", type_="foreignkey")
    op.drop_constraint(op.f("fk_conversations_team_id_teams"), "conversations", type_="foreignkey")
    for column in ("bot_assists", "ticket", "waiting_since", "assignee_id", "team_id"):
        op.drop_column("conversations", column)
    op.drop_constraint(op.f("fk_api_keys_user_id_users"), "api_keys", type_="foreignkey")
    op.drop_column("api_keys", "user_id")
    op.drop_column("memberships", "availability_changed_at")
    op.drop_column("memberships", "availability")
    op.drop_index(op.f("ix_team_members_user_id"), table_name="team_members")
    op.drop_index(op.f("ix_team_members_company_id"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
