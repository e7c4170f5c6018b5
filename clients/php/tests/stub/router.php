<?php

/*
 * Router for `php -S`: a scripted HTTP server for the client's retry and
 * batching tests. Each request is appended to $STUB_DIR/requests.jsonl; the
 * answer is the next entry of $STUB_DIR/script.json:
 *   {"status": 500, "body": "...", "headers": {"Retry-After": "1"}, "sleep_ms": 0}
 * A body of "@results" answers {"results": [...]} with one result per item
 * of the request's events/notifications. An empty script answers 200 "{}".
 */

declare(strict_types=1);

$dir = (string) getenv('STUB_DIR');
$body = (string) file_get_contents('php://input');
$req = [
    'method' => $_SERVER['REQUEST_METHOD'],
    'uri' => $_SERVER['REQUEST_URI'],
    'headers' => array_change_key_case(getallheaders(), CASE_LOWER),
    'body' => $body,
];
file_put_contents($dir . '/requests.jsonl', json_encode($req) . "\n", FILE_APPEND | LOCK_EX);

$script = json_decode((string) @file_get_contents($dir . '/script.json'), true);
if (!is_array($script)) {
    $script = [];
}
$resp = array_shift($script) ?? ['status' => 200, 'body' => '{}'];
file_put_contents($dir . '/script.json', json_encode($script), LOCK_EX);

if (!empty($resp['sleep_ms'])) {
    usleep((int) $resp['sleep_ms'] * 1000);
}
http_response_code((int) ($resp['status'] ?? 200));
foreach ($resp['headers'] ?? [] as $k => $v) {
    header($k . ': ' . $v);
}
$out = $resp['body'] ?? '{}';
if ($out === '@results') {
    $in = json_decode($body, true);
    $items = $in['events'] ?? $in['notifications'] ?? [];
    $results = [];
    foreach ($items as $i => $item) {
        $results[] = ['id' => 'r' . $i, 'online' => [], 'users' => $item['users'] ?? [], 'jobs' => count($item['users'] ?? [])];
    }
    $out = json_encode(['results' => $results]);
}
header('Content-Type: application/json');
echo $out;
