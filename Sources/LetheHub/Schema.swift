/// The hub's schema as numbered migrations. Append new ones; never edit one that shipped (the
/// hub checks each applied migration's SHA-256 and refuses to start on a change).
public enum HubSchema {
    /// The advisory lock that lets one instance at a time migrate.
    static let migrationLock: Int64 = 0x4C45_5448_4548_5542  // "LETHEHUB"

    /// Every migration, in order.
    public static let migrations: [Migration] = [
        Migration(number: 1, name: "stations, keys, tokens", statements: [
            """
            CREATE TABLE station (
                id text PRIMARY KEY,
                name text NOT NULL,
                hmac_secret bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                revoked_at timestamptz)
            """,
            """
            CREATE TABLE station_key (
                kid text PRIMARY KEY,
                station_id text NOT NULL REFERENCES station(id),
                jwk text NOT NULL,
                added_at timestamptz NOT NULL DEFAULT now(),
                retired_at timestamptz,
                revoked_at timestamptz)
            """,
            "CREATE INDEX station_key_station ON station_key (station_id)",
            """
            CREATE TABLE api_token (
                name text PRIMARY KEY,
                role text NOT NULL CHECK (role IN ('admin', 'qa', 'station')),
                sha256 text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now())
            """,
        ]),
        Migration(number: 2, name: "records, reports, outbox", statements: [
            """
            CREATE TABLE record (
                id text PRIMARY KEY,
                station_id text NOT NULL REFERENCES station(id),
                body_sha256 text NOT NULL,
                body text NOT NULL,
                sequence int NOT NULL,
                report_id text NOT NULL,
                certificate_id text,
                serial text,
                imei text,
                model text,
                media_type text,
                lot text,
                supplier text,
                grade text NOT NULL,
                certified boolean,
                status text,
                battery_health int,
                diagnostics_verdict text NOT NULL,
                locks text[] NOT NULL DEFAULT '{}',
                bench_seconds int,
                created_at timestamptz,
                received_at timestamptz NOT NULL DEFAULT now(),
                received_by text NOT NULL)
            """,
            "CREATE INDEX record_serial ON record (serial)",
            "CREATE INDEX record_imei ON record (imei)",
            "CREATE INDEX record_station ON record (station_id, received_at)",
            "CREATE INDEX record_lot ON record (lot)",
            "CREATE INDEX record_supplier ON record (supplier)",
            "CREATE INDEX record_received ON record (received_at)",
            """
            CREATE TABLE report (
                id text PRIMARY KEY,
                record_id text NOT NULL REFERENCES record(id),
                kind text NOT NULL CHECK (kind IN ('certificate', 'refurb')),
                station_id text NOT NULL REFERENCES station(id),
                kid text NOT NULL REFERENCES station_key(kid),
                digest text NOT NULL,
                issued_at timestamptz,
                file text NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now())
            """,
            """
            CREATE TABLE outbox (
                record_id text PRIMARY KEY REFERENCES record(id),
                state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
                attempts int NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                lease_until timestamptz,
                leased_by text,
                last_error text,
                delivered_at timestamptz)
            """,
            "CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending'",
        ]),
        Migration(number: 3, name: "verification samples", statements: [
            """
            CREATE TABLE sample (
                id bigserial PRIMARY KEY,
                lot text NOT NULL,
                seed text NOT NULL,
                percent numeric NOT NULL,
                population int NOT NULL,
                drawn_at timestamptz NOT NULL DEFAULT now(),
                drawn_by text NOT NULL)
            """,
            """
            CREATE TABLE sample_item (
                sample_id bigint NOT NULL REFERENCES sample(id),
                record_id text NOT NULL REFERENCES record(id),
                serial text,
                imei text,
                station_id text NOT NULL,
                state text NOT NULL DEFAULT 'hold' CHECK (state IN ('hold', 'passed', 'failed')),
                result text,
                checked_by text,
                checked_at timestamptz,
                PRIMARY KEY (sample_id, record_id))
            """,
            "CREATE INDEX sample_item_serial ON sample_item (serial) WHERE state = 'hold'",
            "CREATE INDEX sample_item_imei ON sample_item (imei) WHERE state = 'hold'",
        ]),
        Migration(number: 4, name: "ingest in one call; lz4 for documents; samples by record", statements: [
            // Documents are read on every lookup: lz4 (de)compresses an order of magnitude faster than pglz.
            "ALTER TABLE record ALTER COLUMN body SET COMPRESSION lz4",
            "ALTER TABLE report ALTER COLUMN file SET COMPRESSION lz4",
            "CREATE INDEX sample_item_record ON sample_item (record_id)",
            // One round trip per record, atomic as one statement: a duplicate, a key reused for
            // another body, a report id already stored with other content, or stored.
            """
            CREATE FUNCTION hub_ingest(
                p_id text, p_station text, p_sha text, p_body text, p_sequence int, p_report_id text, p_certificate_id text,
                p_serial text, p_imei text, p_model text, p_media text, p_lot text, p_supplier text, p_grade text, p_certified boolean,
                p_status text, p_battery int, p_verdict text, p_locks text[], p_bench int, p_created timestamptz, p_by text,
                r_ids text[], r_kinds text[], r_kids text[], r_digests text[], r_issued text[], r_files text[])
            RETURNS text LANGUAGE plpgsql AS $$
            DECLARE
                existing text;
                clash text;
            BEGIN
                SELECT body_sha256 INTO existing FROM record WHERE id = p_id;
                IF FOUND THEN
                    RETURN CASE WHEN existing = p_sha THEN 'duplicate' ELSE 'conflict' END;
                END IF;
                SELECT e.id INTO clash FROM report e JOIN unnest(r_ids, r_digests) AS v(id, digest) ON e.id = v.id
                    WHERE e.digest <> v.digest LIMIT 1;
                IF FOUND THEN
                    RETURN 'report:' || clash;
                END IF;
                INSERT INTO record (id, station_id, body_sha256, body, sequence, report_id, certificate_id, serial, imei, model, media_type,
                    lot, supplier, grade, certified, status, battery_health, diagnostics_verdict, locks, bench_seconds, created_at, received_by)
                VALUES (p_id, p_station, p_sha, p_body, p_sequence, p_report_id, p_certificate_id, p_serial, p_imei, p_model, p_media,
                    p_lot, p_supplier, p_grade, p_certified, p_status, p_battery, p_verdict, p_locks, p_bench, p_created, p_by)
                ON CONFLICT (id) DO NOTHING;
                IF NOT FOUND THEN
                    -- Another request stored this key between our read and our insert.
                    SELECT body_sha256 INTO existing FROM record WHERE id = p_id;
                    RETURN CASE WHEN existing = p_sha THEN 'duplicate' ELSE 'conflict' END;
                END IF;
                INSERT INTO report (id, record_id, kind, station_id, kid, digest, issued_at, file)
                SELECT v.id, p_id, v.kind, p_station, v.kid, v.digest, NULLIF(v.issued, '')::timestamptz, v.file
                FROM unnest(r_ids, r_kinds, r_kids, r_digests, r_issued, r_files) AS v(id, kind, kid, digest, issued, file)
                ON CONFLICT (id) DO NOTHING;
                INSERT INTO outbox (record_id) VALUES (p_id);
                RETURN 'stored';
            END
            $$
            """,
        ]),
        Migration(number: 5, name: "ingest's report check by index", statements: [
            // Migration 4's clash check joined report with unnest(): its cached plan scanned the
            // whole report table on every ingest (perf: heap_getnextslot in PostgreSQL's
            // profile), so ingest slowed as the registry grew. Now one index probe per report.
            """
            CREATE OR REPLACE FUNCTION hub_ingest(
                p_id text, p_station text, p_sha text, p_body text, p_sequence int, p_report_id text, p_certificate_id text,
                p_serial text, p_imei text, p_model text, p_media text, p_lot text, p_supplier text, p_grade text, p_certified boolean,
                p_status text, p_battery int, p_verdict text, p_locks text[], p_bench int, p_created timestamptz, p_by text,
                r_ids text[], r_kinds text[], r_kids text[], r_digests text[], r_issued text[], r_files text[])
            RETURNS text LANGUAGE plpgsql AS $$
            DECLARE
                existing text;
                clash text;
            BEGIN
                SELECT body_sha256 INTO existing FROM record WHERE id = p_id;
                IF FOUND THEN
                    RETURN CASE WHEN existing = p_sha THEN 'duplicate' ELSE 'conflict' END;
                END IF;
                FOR i IN 1 .. coalesce(array_length(r_ids, 1), 0) LOOP
                    SELECT digest INTO clash FROM report WHERE id = r_ids[i];
                    IF FOUND AND clash <> r_digests[i] THEN
                        RETURN 'report:' || r_ids[i];
                    END IF;
                END LOOP;
                INSERT INTO record (id, station_id, body_sha256, body, sequence, report_id, certificate_id, serial, imei, model, media_type,
                    lot, supplier, grade, certified, status, battery_health, diagnostics_verdict, locks, bench_seconds, created_at, received_by)
                VALUES (p_id, p_station, p_sha, p_body, p_sequence, p_report_id, p_certificate_id, p_serial, p_imei, p_model, p_media,
                    p_lot, p_supplier, p_grade, p_certified, p_status, p_battery, p_verdict, p_locks, p_bench, p_created, p_by)
                ON CONFLICT (id) DO NOTHING;
                IF NOT FOUND THEN
                    -- Another request stored this key between our read and our insert.
                    SELECT body_sha256 INTO existing FROM record WHERE id = p_id;
                    RETURN CASE WHEN existing = p_sha THEN 'duplicate' ELSE 'conflict' END;
                END IF;
                INSERT INTO report (id, record_id, kind, station_id, kid, digest, issued_at, file)
                SELECT v.id, p_id, v.kind, p_station, v.kid, v.digest, NULLIF(v.issued, '')::timestamptz, v.file
                FROM unnest(r_ids, r_kinds, r_kids, r_digests, r_issued, r_files) AS v(id, kind, kid, digest, issued, file)
                ON CONFLICT (id) DO NOTHING;
                INSERT INTO outbox (record_id) VALUES (p_id);
                RETURN 'stored';
            END
            $$
            """,
        ]),
    ]
}
