<?php
define('DB_NAME', 'bom_db');
define('DB_USER', 'böm');
define('DB_PASSWORD', 'päss');
define('DB_HOST', ':/tmp/mysql.sock');
define('MULTISITE', true);
define('DOMAIN_CURRENT_SITE', 'bücher.example');
$table_prefix = 'wp_';
