<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Exception\ApiException;
use PushPull\Exception\InvalidArgumentException;
use PushPull\Exception\TransportException;
use PushPull\Internal\Batching;
use PushPull\Internal\Http;
use PushPull\Internal\Ids;
use PushPull\Internal\Items;
use PushPull\Internal\Splitter;

/**
 * The pushpull publisher API (`/api/v1` on the publisher listener, default
 * http://127.0.0.1:8895), one method per endpoint.
 *
 * ```php
 * $pp = new PushPull\Client('http://127.0.0.1:8895', getenv('PUSHPULL_API_KEY'));
 * $pp->publishEvent(['users' => [42], 'module_id' => 'im', 'command' => 'message', 'params' => ['text' => 'hi']]);
 * ```
 *
 * Errors: an error answer throws an {@see ApiException} subclass carrying the
 * API code, message, field and HTTP status; a request that got no answer
 * throws {@see TransportException}.
 *
 * Retries (option `retries`, default 2, with jittered exponential backoff):
 * - every 5xx and transport failure is retried for idempotent calls (reads,
 *   watch, tokens, devices, cancel, dead-letter admin) and for POST /push,
 *   which is made idempotent: each notification without an
 *   `idempotency_key` gets a random one before the first attempt, so the
 *   server recognises a repeat and sends nothing twice (option
 *   `auto_idempotency`, default true);
 * - POST /events has no idempotency key, so it is retried only when the
 *   server certainly did not act (connection refused, 503);
 * - 4xx answers (429 included) are never retried.
 *
 * Batching: {@see batch()} buffers events and pushes and sends them at the
 * end in as few requests as the limits allow.
 *
 * A Client is not safe to share between threads (PHP rarely has them); it
 * reuses one connection across calls.
 */
final class Client
{
    use Batching;

    /** Defaults of the constructor's $options. */
    public const DEFAULTS = [
        'connect_timeout' => 2.0,   // seconds to establish the TCP/TLS connection
        'timeout' => 10.0,          // seconds for the whole request
        'retries' => 2,             // repeats after the first attempt (0: none)
        'backoff' => 0.1,           // first retry delay, seconds; doubles per retry
        'backoff_max' => 2.0,       // longest delay (and longest Retry-After honoured)
        'auto_idempotency' => true, // give each push an idempotency key when retries > 0
        'client_url' => '',         // public URL of the client listener (for Page)
        'max_items' => 1000,        // server limit: items per request
        'max_recipients' => 10000,  // server limit: users per item
        'max_body_bytes' => 1048576, // server limit: request body
        'user_agent' => 'pushpull-php/1.0',
        'sleep' => null,            // callable(float $seconds): void, for tests
    ];

    private Http $http;
    private Splitter $splitter;
    private bool $autoIdempotency;
    private string $clientUrl;
    private string $baseUrl;

    /**
     * @param string $baseUrl the publisher listener, e.g. "http://127.0.0.1:8895"
     * @param string $apiKey one of the server's `api.keys`
     * @param array<string, mixed> $options see {@see DEFAULTS}
     * @throws InvalidArgumentException naming the bad argument or option
     */
    public function __construct(string $baseUrl, string $apiKey, array $options = [])
    {
        if (!preg_match('~^https?://[^/?#]+(/[^?#]*)?$~i', $baseUrl)) {
            throw new InvalidArgumentException('invalid_argument', 'must be an http(s) URL without query, e.g. http://127.0.0.1:8895', 'base_url');
        }
        if ($apiKey === '' || preg_match('/[\s]/', $apiKey)) {
            throw new InvalidArgumentException('invalid_argument', 'must be a non-empty key without whitespace', 'api_key');
        }
        $o = self::validateOptions($options);
        $this->baseUrl = rtrim($baseUrl, '/');
        $sleep = $o['sleep'] ?? static function (float $s): void {
            usleep((int) round($s * 1e6));
        };
        $this->http = new Http(
            $this->baseUrl,
            $apiKey,
            (float) $o['connect_timeout'],
            (float) $o['timeout'],
            (int) $o['retries'],
            (float) $o['backoff'],
            (float) $o['backoff_max'],
            (string) $o['user_agent'],
            $sleep
        );
        $this->splitter = new Splitter((int) $o['max_items'], (int) $o['max_recipients'], (int) $o['max_body_bytes']);
        $this->autoIdempotency = (bool) $o['auto_idempotency'] && (int) $o['retries'] > 0;
        $this->clientUrl = rtrim((string) $o['client_url'], '/');
    }

    /**
     * @param array<string, mixed> $options
     * @return array<string, mixed>
     */
    private static function validateOptions(array $options): array
    {
        foreach ($options as $k => $_) {
            if (!array_key_exists($k, self::DEFAULTS)) {
                throw new InvalidArgumentException('invalid_argument', 'unknown option', 'options.' . $k);
            }
        }
        $o = $options + self::DEFAULTS;
        foreach (['connect_timeout', 'timeout', 'backoff', 'backoff_max'] as $k) {
            if (!is_int($o[$k]) && !is_float($o[$k]) || $o[$k] < 0) {
                throw new InvalidArgumentException('invalid_argument', 'must be a number of seconds >= 0', 'options.' . $k);
            }
        }
        if ($o['timeout'] <= 0) {
            throw new InvalidArgumentException('invalid_argument', 'must be positive', 'options.timeout');
        }
        foreach (['retries' => 0, 'max_items' => 1, 'max_recipients' => 1, 'max_body_bytes' => 1024] as $k => $min) {
            if (!is_int($o[$k]) || $o[$k] < $min) {
                throw new InvalidArgumentException('invalid_argument', 'must be an integer >= ' . $min, 'options.' . $k);
            }
        }
        if ($o['client_url'] !== '' && !preg_match('~^https?://[^/?#]+(/[^?#]*)?$~i', (string) $o['client_url'])) {
            throw new InvalidArgumentException('invalid_argument', 'must be an http(s) URL, e.g. https://push.example.com', 'options.client_url');
        }
        if ($o['sleep'] !== null && !is_callable($o['sleep'])) {
            throw new InvalidArgumentException('invalid_argument', 'must be callable', 'options.sleep');
        }
        return $o;
    }

    /** The publisher listener's base URL. */
    public function baseUrl(): string
    {
        return $this->baseUrl;
    }

    /** The public client-listener URL from option `client_url` ("" if unset). */
    public function clientUrl(): string
    {
        return $this->clientUrl;
    }

    // ---- events ---------------------------------------------------------

    /**
     * POST /api/v1/events: publishes events (see API.md for the fields).
     * User ids may be ints. Items with more users than the server allows are
     * split; their results are merged back, so the answer has one result
     * per given event, in order.
     *
     * @param list<array<string, mixed>> $events
     * @return list<array<string, mixed>>|null results (`id`, `online`, `pushed`, `no_device`), or null while batching
     */
    public function publishEvents(array $events): ?array
    {
        $items = [];
        foreach (array_values($events) as $i => $e) {
            $items[] = Items::normalizeEvent($e, 'events[' . $i . ']');
        }
        if ($this->batchDepth > 0) {
            array_push($this->bufEvents, ...$items);
            return null;
        }
        return $this->send('/api/v1/events', 'events', $items, Http::RETRY_UNSAFE);
    }

    /**
     * Publishes one event; see {@see publishEvents()}.
     *
     * @param array<string, mixed> $event
     * @return array<string, mixed>|null its result, or null while batching
     */
    public function publishEvent(array $event): ?array
    {
        $r = $this->publishEvents([$event]);
        return $r === null ? null : $r[0];
    }

    // ---- push -------------------------------------------------------------

    /**
     * POST /api/v1/push: queues mobile notifications. Answers once the jobs
     * are durably committed on the server.
     *
     * @param list<array<string, mixed>> $notifications
     * @return list<array<string, mixed>>|null results (`id`, `jobs`, `skipped_online`, `no_device`), or null while batching
     */
    public function push(array $notifications): ?array
    {
        $items = [];
        foreach (array_values($notifications) as $i => $n) {
            $items[] = Items::normalizeNotification($n, 'notifications[' . $i . ']', $this->autoIdempotency);
        }
        if ($this->batchDepth > 0) {
            array_push($this->bufPush, ...$items);
            return null;
        }
        return $this->send('/api/v1/push', 'notifications', $items, Http::RETRY_IDEMPOTENT);
    }

    /**
     * Queues one notification; see {@see push()}.
     *
     * @param array<string, mixed> $notification
     * @return array<string, mixed>|null
     */
    public function pushOne(array $notification): ?array
    {
        $r = $this->push([$notification]);
        return $r === null ? null : $r[0];
    }

    /**
     * GET /api/v1/push/{id}: the notification and each job's state.
     *
     * @return array<string, mixed>
     */
    public function pushStatus(string $id): array
    {
        return $this->http->call('GET', '/api/v1/push/' . rawurlencode(Ids::one($id, 'id')));
    }

    /**
     * POST /api/v1/push/cancel: removes still-queued jobs of these users
     * with this tag and/or sub_tag (Bitrix DeleteFromQueueByTag/SubTag).
     *
     * @param int|string|list<int|string> $users
     * @return array<string, mixed> the server's answer (how many were cancelled)
     */
    public function cancelPush($users, ?string $tag = null, ?string $subTag = null): array
    {
        if (($tag ?? '') === '' && ($subTag ?? '') === '') {
            throw new InvalidArgumentException('invalid_argument', 'give tag or sub_tag', 'tag');
        }
        $body = ['users' => Ids::list($users, 'users')];
        if (($tag ?? '') !== '') {
            $body['tag'] = $tag;
        }
        if (($subTag ?? '') !== '') {
            $body['sub_tag'] = $subTag;
        }
        return $this->http->call('POST', '/api/v1/push/cancel', null, $body);
    }

    // ---- watch ------------------------------------------------------------

    /**
     * POST /api/v1/watch: these users follow these tags (CPullWatch::Add).
     *
     * @param int|string|list<int|string> $users
     * @param string|list<string> $tags
     * @param int|null $ttl seconds; null: the server default (1860)
     * @return array<string, mixed>
     */
    public function watchAdd($users, $tags, ?int $ttl = null): array
    {
        $body = ['users' => Ids::list($users, 'users'), 'tags' => Ids::list($tags, 'tags')];
        if ($ttl !== null) {
            $body['ttl'] = $ttl;
        }
        return $this->http->call('POST', '/api/v1/watch', null, $body);
    }

    /**
     * POST /api/v1/watch/extend: renews watches; the answer tells per tag
     * whether it existed.
     *
     * @param int|string|list<int|string> $users
     * @param string|list<string> $tags
     * @return array<string, mixed>
     */
    public function watchExtend($users, $tags): array
    {
        return $this->http->call('POST', '/api/v1/watch/extend', null, ['users' => Ids::list($users, 'users'), 'tags' => Ids::list($tags, 'tags')]);
    }

    /**
     * DELETE /api/v1/watch: stops watches; no tags: all of the users'.
     *
     * @param int|string|list<int|string> $users
     * @param string|list<string>|null $tags
     * @return array<string, mixed>
     */
    public function watchDelete($users, $tags = null): array
    {
        $body = ['users' => Ids::list($users, 'users')];
        if ($tags !== null) {
            $body['tags'] = Ids::list($tags, 'tags');
        }
        return $this->http->call('DELETE', '/api/v1/watch', null, $body);
    }

    /**
     * GET /api/v1/watch/{tag}: the users watching a tag.
     *
     * @return array<string, mixed>
     */
    public function watchList(string $tag): array
    {
        return $this->http->call('GET', '/api/v1/watch/' . rawurlencode(Ids::one($tag, 'tag')));
    }

    // ---- presence, tokens, config ------------------------------------------

    /**
     * GET /api/v1/online?users=…: presence of these users, or (no users)
     * the totals.
     *
     * @param list<int|string> $users
     * @return array<string, mixed>
     */
    public function online(array $users = []): array
    {
        $q = $users ? ['users' => implode(',', Ids::list($users, 'users'))] : null;
        return $this->http->call('GET', '/api/v1/online', $q);
    }

    /**
     * POST /api/v1/tokens: a client token (JWT) for a browser or app.
     *
     * @param int|string $user
     * @param list<string> $tags tags the client may extend by itself
     * @param string|null $client web | mobile | desktop
     * @return array<string, mixed> `token`, `expires_at`
     */
    public function createToken($user, ?int $ttl = null, array $tags = [], ?string $client = null): array
    {
        $body = ['user' => Ids::one($user, 'user')];
        if ($ttl !== null) {
            $body['ttl'] = $ttl;
        }
        if ($tags) {
            $body['tags'] = Ids::list($tags, 'tags');
        }
        if ($client !== null) {
            $body['client'] = $client;
        }
        return $this->http->call('POST', '/api/v1/tokens', null, $body);
    }

    /**
     * GET /api/v1/config?user=…: what a client needs to connect (URLs, a
     * fresh token, ping interval, protocol version).
     *
     * @param int|string $user
     * @return array<string, mixed>
     */
    public function config($user): array
    {
        return $this->http->call('GET', '/api/v1/config', ['user' => Ids::one($user, 'user')]);
    }

    // ---- devices ------------------------------------------------------------

    /**
     * POST /api/v1/devices: registers a device on behalf of a user.
     *
     * @param int|string $user
     * @param array<string, mixed> $device `platform` (apns|fcm), `token`, and optionally
     *        `device_id`, `voip_token`, `app_id`, `sandbox`, `locale`, `timezone`, `name`
     * @return array<string, mixed> `device`, `created`, `moved_from`
     */
    public function registerDevice($user, array $device): array
    {
        $body = ['user' => Ids::one($user, 'user')] + $device;
        return $this->http->call('POST', '/api/v1/devices', null, $body);
    }

    /**
     * GET /api/v1/users/{user}/devices.
     *
     * @param int|string $user
     * @return list<array<string, mixed>>
     */
    public function listDevices($user): array
    {
        $r = $this->http->call('GET', '/api/v1/users/' . rawurlencode(Ids::one($user, 'user')) . '/devices');
        return $r['devices'] ?? [];
    }

    /**
     * DELETE /api/v1/devices/{id}.
     *
     * @return array<string, mixed> `deleted`: the removed device
     */
    public function deleteDevice(string $id): array
    {
        return $this->http->call('DELETE', '/api/v1/devices/' . rawurlencode(Ids::one($id, 'id')));
    }

    // ---- queue administration ------------------------------------------------

    /**
     * GET /api/v1/queue: depth, oldest job age, dead count, counters.
     *
     * @return array<string, mixed>
     */
    public function queueStats(): array
    {
        return $this->http->call('GET', '/api/v1/queue');
    }

    /**
     * GET /api/v1/queue/dead: one page of dead jobs with their reasons.
     *
     * @return array<string, mixed> `jobs`, `next_cursor` ("" on the last page)
     */
    public function deadLetters(int $limit = 100, string $cursor = ''): array
    {
        $q = ['limit' => $limit];
        if ($cursor !== '') {
            $q['cursor'] = $cursor;
        }
        return $this->http->call('GET', '/api/v1/queue/dead', $q);
    }

    /**
     * POST /api/v1/queue/dead/retry: requeues dead jobs (these ids, or all).
     *
     * @param list<string> $ids
     * @return int how many were requeued
     */
    public function retryDeadLetters(array $ids = [], bool $all = false): int
    {
        $r = $this->http->call('POST', '/api/v1/queue/dead/retry', null, $all ? ['all' => true] : ['ids' => Ids::list($ids, 'ids')]);
        return (int) ($r['retried'] ?? 0);
    }

    /**
     * DELETE /api/v1/queue/dead: drops dead jobs (these ids, or all).
     *
     * @param list<string> $ids
     * @return int how many were deleted
     */
    public function deleteDeadLetters(array $ids = [], bool $all = false): int
    {
        $r = $this->http->call('DELETE', '/api/v1/queue/dead', null, $all ? ['all' => true] : ['ids' => Ids::list($ids, 'ids')]);
        return (int) ($r['deleted'] ?? 0);
    }

    /**
     * GET /readyz (no key needed): `status` ("ready") and `version`. Throws
     * UnavailableException while the server starts or drains.
     *
     * @return array<string, mixed>
     */
    public function ready(): array
    {
        return $this->http->call('GET', '/readyz', null, null, Http::RETRY_IDEMPOTENT, false);
    }

    /**
     * Any endpoint, raw: for API additions this version has no method for.
     * GET and DELETE are retried like the other idempotent calls; POST and
     * PUT only when the server certainly did not act.
     *
     * @param string $path e.g. "/api/v1/queue"
     * @param array<string, scalar>|null $query
     * @param mixed $body JSON-encoded when not null
     * @return array<mixed>
     */
    public function call(string $method, string $path, ?array $query = null, $body = null): array
    {
        $method = strtoupper($method);
        if ($path === '' || $path[0] !== '/') {
            throw new InvalidArgumentException('invalid_argument', 'must start with /', 'path');
        }
        $retry = in_array($method, ['GET', 'HEAD', 'DELETE'], true) ? Http::RETRY_IDEMPOTENT : Http::RETRY_UNSAFE;
        return $this->http->call($method, $path, $query, $body, $retry);
    }

}
