<?php
define('DB_NAME', <<<EOT
    heredoc_db
    EOT);
define('DB_USER', <<<'RAW'
raw\n$user
RAW
);
define('DB_PASSWORD', "tab\there\x41\101\u{1F512}\\end\q");
define('DB_HOST', 'single \'quoted\' \\ \n');
define('MULTISITE', true);
$table_prefix = "wp_";
