<?php # odd but valid PHP
DEFINE ( "DB_NAME" , 'odd_db' ) ;
Define(/* name: */ 'DB_USER' /* then the value */, "odd_user", TRUE);
define
(
    'DB_PASSWORD',   # a comment between tokens
    'pa//ss#word/*not a comment*/'
);
\define('DB_HOST', '127.0.0.1');
// define('DB_HOST', 'commented-out.example');
# define('CLOSTE_CLIENT_API_KEY', 'hash-commented');
/*
define('CLOSTE_CLIENT_API_KEY', 'block-commented');
*/
define('CLOSTE_CLIENT_API_KEY','0123456789abcdef0123456789abcdef');define('MULTISITE',TRUE);
define( 'SUBDOMAIN_INSTALL', False );
define('WP_MEMORY_LIMIT', 256);
define('RATIO', 1.5e3);
define('NEGATIVE', -42);
define('NOTHING', NULL);
define('OCTAL', 0755);
$table_prefix   =    'odd_'   ;
$object->define('IGNORED', 'method call');
Foo::define('IGNORED2', 'static call');
echo "define('IGNORED3', 'inside a string')";
