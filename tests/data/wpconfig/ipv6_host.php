<?php
define('DB_NAME', 'v6');
define('DB_USER', 'v6user');
define('DB_PASSWORD', '');
define('DB_HOST', '[::1]:3306');
define('MULTISITE', true);
$table_prefix = 'wp_';
