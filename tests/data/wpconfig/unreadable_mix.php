<?php
define('DB_NAME', 'mix_' . 'db');
define('DB_USER', SOME_OTHER_CONSTANT);
define('DB_PASSWORD', trim(file_get_contents('/run/secrets/db_password')));
define('DB_HOST', "db-$region.internal");
define('CLOSTE_CLIENT_API_KEY', $_SERVER['CLOSTE_KEY'] ?? 'fallback-key-secret-value');
define('MULTISITE', true);
define('SUBDOMAIN_INSTALL', true);
define('DOMAIN_CURRENT_SITE', 'mix.example');
define('WP_DEBUG', (bool) getenv('WP_DEBUG'));
$table_prefix = 'wp_';
