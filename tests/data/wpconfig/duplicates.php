<?php
define('DB_NAME', 'first_db');
define('DB_USER', 'dup_user');
define('DB_PASSWORD', 'dup_pass');
define('DB_HOST', 'localhost');
define('DB_NAME', 'second_db');
defined('DB_USER') || define('DB_USER', 'guarded_user');
if ( ! defined( 'DB_PASSWORD' ) ) {
    define( 'DB_PASSWORD', 'guarded_pass' );
}
if (!defined('CLOSTE_CLIENT_API_KEY')) define('CLOSTE_CLIENT_API_KEY', 'guarded-key-0123456789abcdef0123');
define('MULTISITE', true);
$table_prefix = 'old_';
$table_prefix = 'new_';
