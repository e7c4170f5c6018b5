<?php

declare(strict_types=1);

namespace PushPull\Tests\Server;

use PushPull\Devices;
use PushPull\Exception\InvalidArgumentException;
use PushPull\PushManager;

/**
 * CPushManager port and the push, push status and cancel endpoints.
 */
final class PushTest extends ServerTestCase
{
    public function testAddQueueQueuesOneJobPerDevice(): void
    {
        $u = self::user();
        Devices::register($u, 'apns', self::apnsToken(), ['device_id' => 'p1-' . $u, 'app_id' => 'com.example.app']);
        Devices::register($u, 'fcm', 'fcm-token-' . $u, ['device_id' => 'p2-' . $u, 'app_id' => 'com.example.app']);
        $r = $this->endpoint('POST /api/v1/push', fn () => PushManager::addQueue([
            'USER_ID' => $u,
            'MESSAGE' => 'Hi there',
            'TITLE' => 'Anna',
            'PARAMS' => ['chat' => 17],
            'TAG' => 'IM_MESS',
            'SUB_TAG' => 'IM_MESS_17',
            'BADGE' => 3,
            'SOUND' => 'default',
            'EXPIRY' => 600,
            'APP_ID' => 'com.example.app',
            'SEND_IMMEDIATELY' => 'Y',
            'ADVANCED_PARAMS' => ['senderName' => 'Anna', 'senderMessage' => 'Hi there'],
        ]));
        $this->assertIsString($r['id']);
        $this->assertSame(2, $r['jobs']);

        $status = $this->endpoint('GET /api/v1/push/{id}', fn () => $this->client->pushStatus($r['id']));
        $this->assertSame($r['id'], $status['id'] ?? $status['notification']['id'] ?? null);
    }

    public function testNoDeviceIsReported(): void
    {
        $u = self::user();
        $r = $this->endpoint('POST /api/v1/push', fn () => PushManager::addQueue(['USER_ID' => $u, 'MESSAGE' => 'x']));
        $this->assertSame(0, $r['jobs']);
        $this->assertSame([(string) $u], $r['no_device']);
    }

    public function testSendMessageSendsSeveral(): void
    {
        $u1 = self::user();
        $u2 = self::user();
        Devices::register($u1, 'apns', self::apnsToken());
        $rs = $this->endpoint('POST /api/v1/push', fn () => PushManager::sendMessage([
            ['USER_ID' => $u1, 'MESSAGE' => 'one'],
            ['USER_ID' => $u2, 'MESSAGE' => 'two'],
        ]));
        $this->assertCount(2, $rs);
        $this->assertSame(1, $rs[0]['jobs']);
        $this->assertSame(0, $rs[1]['jobs']);
    }

    public function testSameIdempotencyKeySendsOnce(): void
    {
        $u = self::user();
        Devices::register($u, 'apns', self::apnsToken());
        $n = ['users' => [$u], 'body' => 'once', 'idempotency_key' => 'k-' . $u];
        $a = $this->endpoint('POST /api/v1/push', fn () => $this->client->pushOne($n));
        $b = $this->client->pushOne($n);
        $this->assertSame($a['id'], $b['id']);
    }

    public function testDeleteFromQueueByTagAndSubTag(): void
    {
        $u = self::user();
        Devices::register($u, 'apns', self::apnsToken());
        // Deferred, so they are certainly still queued when cancelled.
        $this->endpoint('POST /api/v1/push', fn () => PushManager::addQueue(['USER_ID' => $u, 'MESSAGE' => 'a', 'TAG' => 'T1', 'SUB_TAG' => 'S1', 'SEND_DEFERRED' => 'Y']));
        PushManager::addQueue(['USER_ID' => $u, 'MESSAGE' => 'b', 'TAG' => 'T2', 'SUB_TAG' => 'S2', 'SEND_DEFERRED' => 'Y']);
        $this->assertSame(1, $this->endpoint('POST /api/v1/push/cancel', fn () => PushManager::deleteFromQueueByTag($u, 'T1')));
        $this->assertSame(1, PushManager::deleteFromQueueBySubTag($u, 'S2'));
        $this->assertSame(0, PushManager::deleteFromQueueBySubTag($u, 'S2'));
    }

    public function testInvalidNotificationNamesTheItem(): void
    {
        try {
            $this->endpoint('POST /api/v1/push', fn () => $this->client->push([
                ['users' => [1], 'body' => 'ok'],
                ['users' => [1], 'body' => 'x', 'priority' => 'urgent'],
            ]));
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame('notifications[1].priority', $e->getField());
        }
    }

    public function testMissingUserIsCaughtBeforeSending(): void
    {
        try {
            PushManager::addQueue(['MESSAGE' => 'to nobody']);
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertSame('message.USER_ID', $e->getField());
            $this->assertSame(0, $e->getHttpStatus());
        }
    }
}
