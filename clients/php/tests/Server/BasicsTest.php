<?php

declare(strict_types=1);

namespace PushPull\Tests\Server;

use PushPull\Client;
use PushPull\Devices;
use PushPull\Exception\InvalidArgumentException;
use PushPull\Exception\NotFoundException;
use PushPull\Exception\UnauthenticatedException;
use PushPull\Options;
use PushPull\PushPull;
use PushPull\Tests\StubServer;

/**
 * Error paths, server status, devices and queue administration.
 */
final class BasicsTest extends ServerTestCase
{
    public function testBadKeyIsUnauthenticated(): void
    {
        $bad = new Client($this->url, 'not-the-key-0123456789');
        try {
            $bad->queueStats();
            $this->fail('no exception');
        } catch (UnauthenticatedException $e) {
            $this->assertSame('unauthenticated', $e->getErrorCode());
            $this->assertSame(401, $e->getHttpStatus());
            $this->assertNotSame('', $e->getErrorMessage());
        }
    }

    public function testInvalidFieldIsNamed(): void
    {
        try {
            Devices::register(self::user(), 'apns', 'not-hex');
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame('token', $e->getField());
            $this->assertSame(400, $e->getHttpStatus());
        }
        try {
            Devices::register(self::user(), 'apns', self::apnsToken(), ['sandbx' => true]);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame('sandbx', $e->getField(), 'a misspelt option is rejected, not ignored');
        }
    }

    public function testMissingObjectIsNotFound(): void
    {
        try {
            Devices::delete('no-such-device-' . bin2hex(random_bytes(4)));
            $this->fail('no exception');
        } catch (NotFoundException $e) {
            $this->assertSame(404, $e->getHttpStatus());
            $this->assertFalse($e->isNoSuchEndpoint());
        }
    }

    public function testUnknownEndpoint(): void
    {
        try {
            $this->client->call('GET', '/api/v1/no-such-thing');
            $this->fail('no exception');
        } catch (NotFoundException $e) {
            $this->assertSame('not_found', $e->getErrorCode());
            $this->assertTrue($e->isNoSuchEndpoint());
        }
    }

    public function testStatus(): void
    {
        $this->assertTrue(Options::isServerAvailable());
        $s = Options::status();
        $this->assertTrue($s['available']);
        $this->assertSame('ready', $s['status']);
        $this->assertNotSame('', $s['version']);

        PushPull::setClient(new Client('http://127.0.0.1:' . StubServer::freePort(), 'k0123456789abcdef', ['retries' => 0]));
        $this->assertFalse(Options::isServerAvailable());
        $this->assertNotSame('', Options::status()['error']);
    }

    public function testDevicesRegisterListMoveDelete(): void
    {
        $u1 = self::user();
        $u2 = self::user();
        $token = self::apnsToken();
        $r = Devices::register($u1, 'apns', $token, ['device_id' => 'dev-' . $u1, 'app_id' => 'com.example.app', 'name' => 'iPhone']);
        $this->assertTrue($r['created']);
        $this->assertSame((string) $u1, $r['device']['user']);
        $this->assertSame('dev-' . $u1, $r['device']['id']);

        $list = Devices::listByUser($u1);
        $this->assertCount(1, $list);
        $this->assertSame($token, $list[0]['token']);

        // A token belongs to one user at a time: registering it for u2 moves it.
        $r = Devices::register($u2, 'apns', $token, ['device_id' => 'dev-' . $u1]);
        $this->assertFalse($r['created']);
        $this->assertSame((string) $u1, $r['moved_from'] ?? null);
        $this->assertSame([], Devices::listByUser($u1));

        $deleted = Devices::delete('dev-' . $u1);
        $this->assertSame('dev-' . $u1, $deleted['id']);
        $this->assertSame([], Devices::listByUser($u2));
    }

    public function testRegisterBitrixDevice(): void
    {
        $u = self::user();
        $r = Devices::registerBitrix($u, [
            'DEVICE_TYPE' => 'APPLE',
            'DEVICE_TOKEN' => self::apnsToken(),
            'APP_ID' => 'Bitrix24_bxdev',
            'UNIQUE_ID' => 'bx-' . $u,
            'DEVICE_NAME' => 'iPad',
        ]);
        $this->assertSame('apns', $r['device']['platform']);
        $this->assertSame('Bitrix24', $r['device']['app_id']);
        $this->assertTrue($r['device']['sandbox']);
        $this->assertSame('bx-' . $u, $r['device']['id']);
        Devices::delete('bx-' . $u);
    }

    public function testQueueAdministration(): void
    {
        $s = $this->client->queueStats();
        foreach (['due', 'deferred', 'in_flight', 'dead'] as $k) {
            $this->assertArrayHasKey($k, $s);
        }
        $page = $this->client->deadLetters(10);
        $this->assertIsArray($page['jobs']);
        $this->assertArrayHasKey('next_cursor', $page);
        $this->assertSame(0, $this->client->retryDeadLetters(['no-such-job']));
        $this->assertGreaterThanOrEqual(0, $this->client->deleteDeadLetters([], true));
        try {
            $this->client->deadLetters(0);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame('limit', $e->getField());
        }
    }
}
