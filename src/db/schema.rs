//! The shared schema: portable types only (text ids, UTC `Timestamp`, `Bool`,
//! `Integer`), so one diesel codebase serves SQLite and PostgreSQL. Both
//! migration trees in `migrations/` must produce exactly this.

diesel::table! {
    organisations (id) {
        id -> Text,
        name -> Text,
        default_language -> Text,
        time_zone -> Text,
        min_group_size -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        organisation_id -> Text,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        must_change_password -> Bool,
        disabled -> Bool,
        created_at -> Timestamp,
        password_changed_at -> Nullable<Timestamp>,
        team_id -> Nullable<Text>,
        failed_sign_ins -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_sign_in_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        organisation_id -> Text,
        parent_id -> Nullable<Text>,
        name -> Text,
        external_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        organisation_id -> Text,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        account_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(accounts -> organisations (organisation_id));
diesel::joinable!(sessions -> accounts (account_id));
diesel::joinable!(api_keys -> organisations (organisation_id));
diesel::allow_tables_to_appear_in_same_query!(organisations, accounts, sessions, teams, api_keys);

diesel::table! {
    people (id) {
        id -> Text,
        organisation_id -> Text,
        email -> Text,
        name -> Text,
        team_id -> Text,
        language -> Text,
        job_title -> Nullable<Text>,
        level -> Nullable<Integer>,
        external_id -> Nullable<Text>,
        status -> Text,
        exit_kind -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    person_events (id) {
        id -> Text,
        organisation_id -> Text,
        person_id -> Text,
        seq -> Integer,
        kind -> Text,
        effective_date -> Date,
        team_id -> Text,
        job_title -> Nullable<Text>,
        level -> Nullable<Integer>,
        status -> Text,
        exit_kind -> Nullable<Text>,
        supersedes_id -> Nullable<Text>,
        recorded_at -> Timestamp,
    }
}

diesel::joinable!(person_events -> people (person_id));
diesel::allow_tables_to_appear_in_same_query!(people, person_events, teams);

diesel::table! {
    idempotency_keys (organisation_id, idempotency_key) {
        organisation_id -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        status -> Integer,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    survey_templates (organisation_id, template_key, version) {
        organisation_id -> Text,
        template_key -> Text,
        version -> Integer,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    pulses (id) {
        id -> Text,
        organisation_id -> Text,
        name -> Text,
        templates -> Text,
        audience -> Text,
        excluded_teams -> Text,
        cron -> Text,
        time_zone -> Text,
        open_hours -> Integer,
        reminder_hours -> Text,
        start_date -> Nullable<Date>,
        end_date -> Nullable<Date>,
        status -> Text,
        min_group_size -> Integer,
        waves_opened -> Integer,
        schedule_from -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    waves (id) {
        id -> Text,
        organisation_id -> Text,
        pulse_id -> Text,
        scheduled_at -> Nullable<Timestamp>,
        opened_by -> Text,
        status -> Text,
        number -> Nullable<Integer>,
        template_key -> Nullable<Text>,
        template_version -> Nullable<Integer>,
        template -> Nullable<Text>,
        min_group_size -> Integer,
        opened_at -> Nullable<Timestamp>,
        closes_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        reminders -> Text,
        reminders_queued -> Integer,
        invited -> Integer,
        created_at -> Timestamp,
        delivery -> Nullable<Text>,
    }
}

diesel::table! {
    wave_teams (wave_id, team_id) {
        wave_id -> Text,
        team_id -> Text,
        invited -> Integer,
    }
}

diesel::table! {
    wave_participation (wave_id, team_id, scope) {
        wave_id -> Text,
        team_id -> Text,
        scope -> Text,
        invited -> Integer,
        responded -> Integer,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        organisation_id -> Text,
        wave_id -> Text,
        person_id -> Text,
        team_id -> Text,
        language -> Text,
        answered -> Bool,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        organisation_id -> Text,
        invitation_id -> Text,
        reminder -> Integer,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        wave_id -> Text,
        person_id -> Text,
        language -> Text,
    }
}

diesel::table! {
    responses (id) {
        id -> Text,
        wave_id -> Text,
        team_id -> Text,
        answers -> Text,
        nullifier -> Nullable<Text>,
        scope -> Text,
    }
}

diesel::table! {
    publications (seq) {
        seq -> Integer,
        wave_id -> Text,
        organisation_id -> Text,
        min_group_size -> Integer,
        teams -> Text,
        published_at -> Timestamp,
    }
}

diesel::table! {
    results (publication, group_kind, team_id, measure_kind, measure) {
        publication -> Integer,
        group_kind -> Text,
        team_id -> Text,
        measure_kind -> Text,
        measure -> Text,
        n -> Nullable<Integer>,
        suppressed -> Nullable<Text>,
        figures -> Nullable<Text>,
    }
}

diesel::table! {
    latest_themes (organisation_id, group_kind, team_id, theme) {
        organisation_id -> Text,
        group_kind -> Text,
        team_id -> Text,
        theme -> Text,
        wave_id -> Text,
        closed_at -> Timestamp,
        n -> Nullable<Integer>,
        suppressed -> Nullable<Text>,
        figures -> Nullable<Text>,
    }
}

diesel::joinable!(waves -> pulses (pulse_id));
diesel::joinable!(results -> publications (publication));
diesel::joinable!(publications -> waves (wave_id));
diesel::joinable!(responses -> waves (wave_id));
diesel::joinable!(invitations -> waves (wave_id));
diesel::joinable!(outbox -> invitations (invitation_id));
diesel::joinable!(invitations -> people (person_id));
diesel::joinable!(waves -> organisations (organisation_id));
diesel::allow_tables_to_appear_in_same_query!(
    latest_themes,
    publications,
    results,
    pulses,
    responses,
    waves,
    wave_teams,
    invitations,
    outbox,
    people,
    organisations
);

diesel::table! {
    webhooks (id) {
        id -> Text,
        organisation_id -> Text,
        url -> Text,
        description -> Text,
        events -> Text,
        secret -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        consecutive_failures -> Integer,
        retry_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        event_id -> Text,
        webhook_id -> Text,
        organisation_id -> Text,
        wave_id -> Text,
        event -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (delivery_id, number) {
        delivery_id -> Text,
        number -> Integer,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> Integer,
    }
}

diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::allow_tables_to_appear_in_same_query!(webhooks, webhook_deliveries, webhook_attempts);

diesel::table! {
    audit_events (id) {
        id -> Text,
        organisation_id -> Text,
        occurred_at -> Timestamp,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        actor_label -> Nullable<Text>,
        client_address -> Nullable<Text>,
        action -> Text,
        target_kind -> Nullable<Text>,
        target_id -> Nullable<Text>,
        details -> Text,
    }
}
