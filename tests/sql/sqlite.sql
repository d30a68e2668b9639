-- The same tables as WordPress's SQLite Database Integration stores them: its translator maps
-- bigint/tinyint/int to integer, varchar/longtext/datetime/enum to text, auto_increment keys to
-- INTEGER PRIMARY KEY AUTOINCREMENT, and turns each KEY into a separate CREATE INDEX named
-- "{table}__{key}".

CREATE TABLE "{prefix}site" (
  "id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
  "domain" text NOT NULL DEFAULT '',
  "path" text NOT NULL DEFAULT ''
);
CREATE INDEX "{prefix}site__domain" ON "{prefix}site" ("domain", "path");

CREATE TABLE "{prefix}sitemeta" (
  "meta_id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
  "site_id" integer NOT NULL DEFAULT '0',
  "meta_key" text DEFAULT NULL,
  "meta_value" text
);
CREATE INDEX "{prefix}sitemeta__meta_key" ON "{prefix}sitemeta" ("meta_key");
CREATE INDEX "{prefix}sitemeta__site_id" ON "{prefix}sitemeta" ("site_id");

CREATE TABLE "{prefix}blogs" (
  "blog_id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
  "site_id" integer NOT NULL DEFAULT '0',
  "domain" text NOT NULL DEFAULT '',
  "path" text NOT NULL DEFAULT '',
  "registered" text NOT NULL DEFAULT '0000-00-00 00:00:00',
  "last_updated" text NOT NULL DEFAULT '0000-00-00 00:00:00',
  "public" integer NOT NULL DEFAULT '1',
  "archived" integer NOT NULL DEFAULT '0',
  "mature" integer NOT NULL DEFAULT '0',
  "spam" integer NOT NULL DEFAULT '0',
  "deleted" integer NOT NULL DEFAULT '0',
  "lang_id" integer NOT NULL DEFAULT '0'
);
CREATE INDEX "{prefix}blogs__domain" ON "{prefix}blogs" ("domain", "path");
CREATE INDEX "{prefix}blogs__lang_id" ON "{prefix}blogs" ("lang_id");

CREATE TABLE "{mappings}" (
  "id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
  "blog_id" integer NOT NULL,
  "domain" text NOT NULL,
  "active" integer DEFAULT 1,
  "primary_domain" integer DEFAULT 0,
  "secure" integer DEFAULT 0,
  "stage" text DEFAULT 'checking-dns',
  "date_created" text NULL,
  "date_modified" text NULL
);
CREATE INDEX "{mappings}__blog_id" ON "{mappings}" ("blog_id", "domain", "active");
CREATE INDEX "{mappings}__domain" ON "{mappings}" ("domain");
