<?php
// Saved on Windows
define('DB_NAME', 'crlf_db');
define('DB_USER', 'crlf_user');
define('DB_PASSWORD', "line1\r\nline2");
define('DB_HOST', 'localhost:3307');
/* a block
   comment */
define('MULTISITE', true);
$table_prefix = 'crlf_';
