<?php
define('DB_NAME', 'network');
define('DB_USER', 'network');
define('DB_PASSWORD', 'sock-pass');
define('DB_HOST', 'localhost:/var/run/mysqld/mysqld.sock');
define('MULTISITE', true);
define('SUBDOMAIN_INSTALL', false);
define('DOMAIN_CURRENT_SITE', 'example.org');
$table_prefix = 'net_';
require_once ABSPATH . 'wp-settings.php';
