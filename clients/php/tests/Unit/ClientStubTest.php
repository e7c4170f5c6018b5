<?php

declare(strict_types=1);

namespace PushPull\Tests\Unit;

use PHPUnit\Framework\TestCase;
use PushPull\Client;
use PushPull\Exception\ApiException;
use PushPull\Exception\InvalidArgumentException;
use PushPull\Exception\NotFoundException;
use PushPull\Exception\RateLimitedException;
use PushPull\Exception\ServerException;
use PushPull\Exception\TransportException;
use PushPull\Exception\UnauthenticatedException;
use PushPull\Exception\UnavailableException;
use PushPull\Tests\StubServer;

/**
 * The client's HTTP behaviour (retries, idempotency keys, error mapping,
 * batching) against a scripted `php -S` server: no pushpull needed.
 */
final class ClientStubTest extends TestCase
{
    private static StubServer $stub;
    /** @var list<float> delays the client asked to sleep */
    private array $slept = [];

    public static function setUpBeforeClass(): void
    {
        self::$stub = new StubServer();
    }

    public static function tearDownAfterClass(): void
    {
        self::$stub->stop();
    }

    /**
     * @param array<string, mixed> $options
     */
    private function client(array $options = []): Client
    {
        $this->slept = [];
        return new Client(self::$stub->url, 'test-key-0123456789', $options + [
            'sleep' => function (float $s): void {
                $this->slept[] = $s;
            },
            'timeout' => 5.0,
        ]);
    }

    private static function err(int $status, string $code, string $msg = 'x', string $field = ''): array
    {
        return ['status' => $status, 'body' => json_encode(['error' => ['code' => $code, 'message' => $msg, 'field' => $field]])];
    }

    public function testSendsKeyAndJson(): void
    {
        self::$stub->script([['status' => 200, 'body' => '{"due":1}']]);
        $this->assertSame(['due' => 1], $this->client()->queueStats());
        $r = self::$stub->requests()[0];
        $this->assertSame('GET', $r['method']);
        $this->assertSame('/api/v1/queue', $r['uri']);
        $this->assertSame('Bearer test-key-0123456789', $r['headers']['authorization']);
    }

    public function testRetriesIdempotentCallOn5xxWithBackoff(): void
    {
        self::$stub->script([self::err(500, 'internal'), ['status' => 502, 'body' => '<html>bad gateway</html>'], ['status' => 200, 'body' => '{"ok":true}']]);
        $c = $this->client(['retries' => 2, 'backoff' => 0.1, 'backoff_max' => 1.0]);
        $this->assertSame(['ok' => true], $c->watchList('T'));
        $this->assertCount(3, self::$stub->requests());
        $this->assertCount(2, $this->slept);
        $this->assertGreaterThanOrEqual(0.05, $this->slept[0]);
        $this->assertLessThanOrEqual(0.1, $this->slept[0]);
        $this->assertGreaterThanOrEqual(0.1, $this->slept[1], 'backoff doubles');
        $this->assertLessThanOrEqual(0.2, $this->slept[1]);
    }

    public function testGivesUpAfterTheRetryBudget(): void
    {
        self::$stub->script([self::err(500, 'internal', 'boom'), self::err(500, 'internal', 'boom'), ['status' => 200, 'body' => '{}']]);
        try {
            $this->client(['retries' => 1])->queueStats();
            $this->fail('no exception');
        } catch (ServerException $e) {
            $this->assertSame('internal', $e->getErrorCode());
            $this->assertSame(500, $e->getHttpStatus());
        }
        $this->assertCount(2, self::$stub->requests());
    }

    public function testNonJsonErrorBodyStillMapsByStatus(): void
    {
        self::$stub->script([['status' => 502, 'body' => '<html>bad gateway</html>']]);
        try {
            $this->client(['retries' => 0])->queueStats();
            $this->fail('no exception');
        } catch (ServerException $e) {
            $this->assertSame('internal', $e->getErrorCode());
            $this->assertSame(502, $e->getHttpStatus());
            $this->assertStringContainsString('bad gateway', $e->getErrorMessage());
        }
    }

    public function testNeverRetries4xx(): void
    {
        self::$stub->script([self::err(400, 'invalid_argument', 'required', 'users'), ['status' => 200, 'body' => '{}']]);
        try {
            $this->client(['retries' => 3])->watchAdd([1], ['T']);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame('users', $e->getField());
            $this->assertSame(400, $e->getHttpStatus());
        }
        $this->assertCount(1, self::$stub->requests());
        $this->assertSame([], $this->slept);
    }

    public function testRateLimitedCarriesRetryAfterAndIsNotRetried(): void
    {
        self::$stub->script([self::err(429, 'rate_limited', 'slow down') + ['headers' => ['Retry-After' => '7']]]);
        try {
            $this->client(['retries' => 3])->queueStats();
            $this->fail('no exception');
        } catch (RateLimitedException $e) {
            $this->assertSame(7.0, $e->getRetryAfter());
        }
        $this->assertCount(1, self::$stub->requests());
    }

    public function testErrorClassesByCode(): void
    {
        self::$stub->script([self::err(401, 'unauthenticated', 'invalid API key'), self::err(404, 'not_found', 'no such endpoint'), self::err(404, 'not_found', 'not found')]);
        $c = $this->client(['retries' => 0]);
        try {
            $c->queueStats();
            $this->fail('no exception');
        } catch (UnauthenticatedException $e) {
            $this->assertSame('unauthenticated', $e->getErrorCode());
        }
        try {
            $c->queueStats();
            $this->fail('no exception');
        } catch (NotFoundException $e) {
            $this->assertTrue($e->isNoSuchEndpoint());
        }
        try {
            $c->pushStatus('n_1');
            $this->fail('no exception');
        } catch (NotFoundException $e) {
            $this->assertFalse($e->isNoSuchEndpoint());
        }
    }

    public function testPushRetryReusesTheGeneratedIdempotencyKey(): void
    {
        self::$stub->script([self::err(500, 'internal'), ['status' => 200, 'body' => '@results']]);
        $r = $this->client(['retries' => 2])->pushOne(['users' => [42], 'body' => 'hi']);
        $this->assertSame('r0', $r['id']);
        $reqs = self::$stub->requests();
        $this->assertCount(2, $reqs);
        $a = json_decode($reqs[0]['body'], true)['notifications'][0];
        $b = json_decode($reqs[1]['body'], true)['notifications'][0];
        $this->assertMatchesRegularExpression('/^php-[0-9a-f]{24}$/', $a['idempotency_key']);
        $this->assertSame($a['idempotency_key'], $b['idempotency_key'], 'a retry must carry the same key');
        $this->assertSame(['42'], $a['users'], 'user ids go out as strings');
    }

    public function testCallerKeyIsKeptAndNoKeyWithoutRetries(): void
    {
        self::$stub->script([['status' => 200, 'body' => '@results'], ['status' => 200, 'body' => '@results']]);
        $this->client()->pushOne(['users' => ['1'], 'idempotency_key' => 'mine']);
        $this->client(['retries' => 0])->pushOne(['users' => ['1']]);
        $reqs = self::$stub->requests();
        $this->assertSame('mine', json_decode($reqs[0]['body'], true)['notifications'][0]['idempotency_key']);
        $this->assertArrayNotHasKey('idempotency_key', json_decode($reqs[1]['body'], true)['notifications'][0]);
    }

    public function testEventsAreNotRetriedWhenTheServerMayHaveActed(): void
    {
        self::$stub->script([self::err(500, 'internal'), ['status' => 200, 'body' => '@results']]);
        try {
            $this->client(['retries' => 2])->publishEvent(['users' => [1], 'module_id' => 'im', 'command' => 'x']);
            $this->fail('no exception');
        } catch (ServerException $e) {
            $this->assertCount(1, self::$stub->requests(), 'a repeated event would reach users twice');
        }
    }

    public function testEventsAreRetriedOn503WithRetryAfter(): void
    {
        self::$stub->script([self::err(503, 'unavailable', 'draining') + ['headers' => ['Retry-After' => '1']], ['status' => 200, 'body' => '@results']]);
        $r = $this->client(['retries' => 2, 'backoff' => 0.01, 'backoff_max' => 2.0])->publishEvent(['users' => [1], 'module_id' => 'im', 'command' => 'x']);
        $this->assertSame('r0', $r['id']);
        $this->assertCount(2, self::$stub->requests());
        $this->assertSame([1.0], $this->slept, 'Retry-After is honoured');
    }

    public function testRetryAfterLongerThanBackoffMaxIsNotWaited(): void
    {
        self::$stub->script([self::err(503, 'unavailable') + ['headers' => ['Retry-After' => '60']]]);
        $this->expectException(UnavailableException::class);
        try {
            $this->client(['retries' => 2, 'backoff_max' => 2.0])->queueStats();
        } finally {
            $this->assertSame([], $this->slept);
        }
    }

    public function testConnectionRefusedIsATransportErrorRetriedEvenForEvents(): void
    {
        $slept = 0;
        $c = new Client('http://127.0.0.1:' . StubServer::freePort(), 'test-key-0123456789', ['retries' => 2, 'sleep' => function () use (&$slept): void {
            $slept++;
        }]);
        try {
            $c->publishEvent(['users' => [1], 'module_id' => 'im', 'command' => 'x']);
            $this->fail('no exception');
        } catch (TransportException $e) {
            $this->assertTrue($e->wasConnectFailure());
            $this->assertSame(2, $slept, 'nothing reached the server, so a retry is safe');
        }
    }

    public function testTimeoutIsATransportError(): void
    {
        self::$stub->script([['status' => 200, 'body' => '{}', 'sleep_ms' => 1500]]);
        try {
            $this->client(['retries' => 0, 'timeout' => 0.3])->queueStats();
            $this->fail('no exception');
        } catch (TransportException $e) {
            $this->assertTrue($e->isTimeout(), $e->getMessage());
            $this->assertFalse($e->wasConnectFailure());
        }
    }

    public function testBatchSendsFewRequestsAndOneResultPerCall(): void
    {
        self::$stub->script([['status' => 200, 'body' => '@results'], ['status' => 200, 'body' => '@results'], ['status' => 200, 'body' => '@results']]);
        $c = $this->client(['max_items' => 2]);
        $during = [];
        $out = $c->batch(function (Client $c) use (&$during): void {
            $during[] = $c->publishEvent(['users' => [1], 'module_id' => 'im', 'command' => 'a']);
            $during[] = $c->publishEvents([['users' => [2], 'module_id' => 'im', 'command' => 'b'], ['tags' => ['T'], 'module_id' => 'im', 'command' => 'c']]);
            $during[] = $c->pushOne(['users' => [3], 'body' => 'p']);
            $this->assertSame(4, $c->pending());
        });
        $this->assertSame([null, null, null], $during, 'nothing is sent inside the batch');
        $reqs = self::$stub->requests();
        $this->assertSame(['/api/v1/events', '/api/v1/events', '/api/v1/push'], array_column($reqs, 'uri'));
        $this->assertCount(2, json_decode($reqs[0]['body'], true)['events']);
        $this->assertCount(3, $out['events']);
        $this->assertCount(1, $out['push']);
        $this->assertSame(0, $c->pending());
        $this->assertFalse($c->inBatch());
    }

    public function testSplitItemResultsAreMerged(): void
    {
        self::$stub->script([['status' => 200, 'body' => '@results']]);
        $r = $this->client(['max_recipients' => 2])->pushOne(['users' => [1, 2, 3, 4, 5], 'body' => 'x']);
        $body = json_decode(self::$stub->requests()[0]['body'], true);
        $this->assertCount(3, $body['notifications']);
        $this->assertSame(['1', '2', '3', '4', '5'], $r['users']);
        $this->assertSame(5, $r['jobs'], 'counts are added');
        $this->assertSame(['r0', 'r1', 'r2'], $r['ids']);
    }

    public function testBatchIsDiscardedWhenTheCallbackThrows(): void
    {
        self::$stub->script([]);
        $c = $this->client();
        try {
            $c->batch(function (Client $c): void {
                $c->publishEvent(['users' => [1], 'module_id' => 'im', 'command' => 'a']);
                throw new \DomainException('rollback');
            });
            $this->fail('no exception');
        } catch (\DomainException $e) {
            $this->assertSame('rollback', $e->getMessage());
        }
        $this->assertSame(0, $c->pending());
        $this->assertSame([], self::$stub->requests());
    }

    public function testForgottenBatchIsFlushedOnDestruct(): void
    {
        self::$stub->script([['status' => 200, 'body' => '@results']]);
        $c = $this->client();
        $c->beginBatch();
        $c->publishEvent(['users' => [1], 'module_id' => 'im', 'command' => 'a']);
        $this->assertSame([], self::$stub->requests());
        unset($c);
        $this->assertCount(1, self::$stub->requests());
    }

    /**
     * @return array<string, array{string, string, array<string, mixed>, string}>
     */
    public function badConstructorArgs(): array
    {
        return [
            'url' => ['ftp://x', 'key', [], 'base_url'],
            'key' => ['http://x', '', [], 'api_key'],
            'unknown option' => ['http://x', 'key', ['timeout_ms' => 1], 'options.timeout_ms'],
            'negative retries' => ['http://x', 'key', ['retries' => -1], 'options.retries'],
            'zero timeout' => ['http://x', 'key', ['timeout' => 0], 'options.timeout'],
            'client url' => ['http://x', 'key', ['client_url' => 'nope'], 'options.client_url'],
        ];
    }

    /**
     * @dataProvider badConstructorArgs
     * @param array<string, mixed> $options
     */
    public function testConstructorNamesTheBadArgument(string $url, string $key, array $options, string $field): void
    {
        try {
            new Client($url, $key, $options);
            $this->fail('no exception');
        } catch (ApiException $e) {
            $this->assertSame($field, $e->getField());
        }
    }
}
