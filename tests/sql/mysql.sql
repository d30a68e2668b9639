-- WordPress multisite core tables (wp-admin/includes/schema.php, wp_get_db_schema('global'))
-- and Ultimate Multisite's domain mappings table (inc/database/domains/class-domains-table.php),
-- as created on MySQL/MariaDB. {prefix} is the base prefix, {mappings} the mappings table name.

CREATE TABLE `{prefix}site` (
  id bigint(20) NOT NULL auto_increment,
  domain varchar(200) NOT NULL default '',
  path varchar(100) NOT NULL default '',
  PRIMARY KEY  (id),
  KEY domain (domain(140),path(51))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;

CREATE TABLE `{prefix}sitemeta` (
  meta_id bigint(20) NOT NULL auto_increment,
  site_id bigint(20) NOT NULL default '0',
  meta_key varchar(255) default NULL,
  meta_value longtext,
  PRIMARY KEY  (meta_id),
  KEY meta_key (meta_key(191)),
  KEY site_id (site_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;

CREATE TABLE `{prefix}blogs` (
  blog_id bigint(20) NOT NULL auto_increment,
  site_id bigint(20) NOT NULL default '0',
  domain varchar(200) NOT NULL default '',
  path varchar(100) NOT NULL default '',
  registered datetime NOT NULL default '0000-00-00 00:00:00',
  last_updated datetime NOT NULL default '0000-00-00 00:00:00',
  public tinyint(2) NOT NULL default '1',
  archived tinyint(2) NOT NULL default '0',
  mature tinyint(2) NOT NULL default '0',
  spam tinyint(2) NOT NULL default '0',
  deleted tinyint(2) NOT NULL default '0',
  lang_id int(11) NOT NULL default '0',
  PRIMARY KEY  (blog_id),
  KEY domain (domain(50),path(5)),
  KEY lang_id (lang_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;

CREATE TABLE `{mappings}` (
  id bigint(20) NOT NULL auto_increment,
  blog_id bigint(20) NOT NULL,
  domain varchar(191) NOT NULL,
  active tinyint(4) default 1,
  primary_domain tinyint(4) default 0,
  secure tinyint(4) default 0,
  stage enum('checking-dns', 'checking-ssl-cert', 'done-without-ssl', 'done', 'failed', 'ssl-failed') DEFAULT 'checking-dns',
  date_created datetime NULL,
  date_modified datetime NULL,
  PRIMARY KEY (id),
  KEY blog_id (blog_id,domain,active),
  KEY domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
