<?php

declare(strict_types=1);

namespace PushPull\Tests\Server;

use PHPUnit\Framework\TestCase;
use PushPull\Client;
use PushPull\Exception\NotFoundException;
use PushPull\PushPull;
use PushPull\Tokens;

/**
 * Base of the tests against a real pushpull started by run-tests.sh, which
 * passes PUSHPULL_TEST_URL, PUSHPULL_TEST_KEY, PUSHPULL_TEST_CLIENT_URL and
 * PUSHPULL_TEST_JWT_SECRET.
 *
 * The server grows while this library is written: a call answered 404
 * "no such endpoint" (and only that answer) skips the test with the
 * endpoint's name instead of failing it.
 */
abstract class ServerTestCase extends TestCase
{
    protected Client $client;
    protected string $url;
    protected string $key;
    protected string $clientUrl;
    protected string $jwtSecret;

    protected function setUp(): void
    {
        $this->url = (string) getenv('PUSHPULL_TEST_URL');
        $this->key = (string) getenv('PUSHPULL_TEST_KEY');
        $this->clientUrl = (string) getenv('PUSHPULL_TEST_CLIENT_URL');
        $this->jwtSecret = (string) getenv('PUSHPULL_TEST_JWT_SECRET');
        if ($this->url === '' || $this->key === '') {
            $this->markTestSkipped('no server: run ./run-tests.sh, which starts pushpull and sets PUSHPULL_TEST_URL/KEY');
        }
        $this->client = new Client($this->url, $this->key, ['client_url' => $this->clientUrl, 'timeout' => 10.0]);
        PushPull::setClient($this->client);
    }

    protected function tearDown(): void
    {
        PushPull::setClient(null);
    }

    /**
     * Runs $fn; skips the test if the server has no such endpoint yet.
     *
     * @template T
     * @param callable(): T $fn
     * @return T
     */
    protected function endpoint(string $name, callable $fn)
    {
        try {
            return $fn();
        } catch (NotFoundException $e) {
            if ($e->isNoSuchEndpoint()) {
                $this->markTestSkipped('endpoint not implemented by this server yet: ' . $name);
            }
            throw $e;
        }
    }

    /** A user id no other test uses. */
    protected static function user(): int
    {
        return random_int(1000000, 999999999);
    }

    /** A 64-hex APNs token. */
    protected static function apnsToken(): string
    {
        return bin2hex(random_bytes(32));
    }

    /**
     * Runs $publish, then returns the events user $user received, read
     * over the client listener's short polling (GET /sub/poll); null when
     * the server has no /sub/poll yet (see {@see delivered()}).
     *
     * @param callable(): mixed $publish
     * @return list<array<string, mixed>>|null
     */
    protected function deliveredTo(int $user, callable $publish): ?array
    {
        $token = Tokens::mint($this->jwtSecret, $user, 300);
        $first = $this->poll($token, '', 0);
        $publish();
        if ($first === null) {
            return null;
        }
        $events = $this->poll($token, (string) ($first['last_id'] ?? ''), 5);
        return $events['events'] ?? [];
    }

    /**
     * The events of deliveredTo(), skipping the rest of the test when the
     * server could not show them (call it after the other assertions).
     *
     * @param list<array<string, mixed>>|null $events
     * @return list<array<string, mixed>>
     */
    protected function delivered(?array $events): array
    {
        if ($events === null) {
            $this->markTestSkipped('endpoint not implemented by this server yet: GET /sub/poll (delivery check)');
        }
        return $events;
    }

    /**
     * @return array<string, mixed>|null null: no such endpoint
     */
    private function poll(string $token, string $since, int $wait): ?array
    {
        $q = ['token' => $token, 'wait' => $wait];
        if ($since !== '') {
            $q['since'] = $since;
        }
        $ch = curl_init($this->clientUrl . '/sub/poll?' . http_build_query($q));
        curl_setopt_array($ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => $wait + 5]);
        $body = (string) curl_exec($ch);
        $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        if ($status === 404 && str_contains($body, 'no such endpoint')) {
            return null;
        }
        $this->assertSame(200, $status, 'GET /sub/poll: ' . $body);
        return json_decode($body, true, 512, JSON_THROW_ON_ERROR);
    }
}
