-- A read-only role for BI tools on a PostgreSQL scorecard warehouse (docs/bi.md, "A read-only role").
--
--   psql -h db.internal -U scorecard -d scorecard \
--        -v role=bi_reader -v schema=public -v database=scorecard -f warehouse/sql/readonly_role.sql
--
-- Variables:
--   role      the role to grant to (required). Created as a NOLOGIN group role when it does not exist; give each
--             tool its own login in it: CREATE ROLE metabase LOGIN PASSWORD '...' IN ROLE bi_reader;
--             An existing role (e.g. a LOGIN role made beforehand) is only granted to.
--   schema    the warehouse's schema (default public)
--   database  the warehouse's database (default: the one psql is connected to)
--   owner     the role that runs the pipeline and its migrations, so owns the tables (default: the role psql
--             connects as). Tables and views later migrations create are readable too, through
--             ALTER DEFAULT PRIVILEGES FOR ROLE owner; run this as the owner or as a superuser.
--
-- The role gets CONNECT, USAGE on the schema, SELECT on every table and view, and nothing else: no CREATE, no
-- INSERT, UPDATE, DELETE or TRUNCATE. Running it again changes nothing.
\set ON_ERROR_STOP on

\if :{?role}
\else
  DO $$ BEGIN RAISE EXCEPTION 'readonly_role.sql: give the role to grant to, e.g. psql -v role=bi_reader'; END $$;
\endif
\if :{?schema}
\else
  \set schema public
\endif
\if :{?database}
\else
  \set database :DBNAME
\endif
\if :{?owner}
\else
  \set owner :USER
\endif

BEGIN;

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') AS create_role \gset
\if :create_role
  CREATE ROLE :"role" NOLOGIN;
\endif

GRANT CONNECT ON DATABASE :"database" TO :"role";
GRANT USAGE ON SCHEMA :"schema" TO :"role";
-- "TABLES" covers views too.
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO :"role";

COMMIT;
