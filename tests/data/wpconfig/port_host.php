<?php
define("DB_NAME", "multisite");
define("DB_USER", "ms_user");
define("DB_PASSWORD", "p\$ss\"word");
define("DB_HOST", "db.example:3307");
define("MULTISITE", 1);
define("SUBDOMAIN_INSTALL", "1");
define("DOMAIN_CURRENT_SITE", "Example.COM");
$table_prefix = "wp2_";
