<?php
// WordPress with the SQLite Database Integration plugin (wp-content/db.php drop-in).
define( 'DB_ENGINE', 'sqlite' );
define( 'DB_DIR', '/srv/wp/database/' );
define( 'DB_FILE', 'network.sqlite' );

define( 'DB_NAME', 'database_name_here' );
define( 'DB_USER', 'username_here' );
define( 'DB_PASSWORD', 'password_here' );
define( 'DB_HOST', 'localhost' );

define( 'MULTISITE', true );
define( 'SUBDOMAIN_INSTALL', true );
define( 'DOMAIN_CURRENT_SITE', 'sqlite.example' );
$table_prefix = 'wp_';
