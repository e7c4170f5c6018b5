<?php

declare(strict_types=1);

namespace PushPull\Tests\Server;

use PushPull\Client;
use PushPull\Exception\InvalidArgumentException;
use PushPull\PullStack;
use PushPull\PullWatch;

/**
 * CPullStack / CPullWatch ports and the events, watch and online endpoints.
 */
final class PullTest extends ServerTestCase
{
    private static function message(string $command, array $params = []): array
    {
        return ['module_id' => 'IM', 'command' => $command, 'params' => $params, 'expiry' => 60];
    }

    public function testAddByUserReachesTheUser(): void
    {
        $u = self::user();
        $result = null;
        $events = $this->deliveredTo($u, function () use ($u, &$result): void {
            $result = $this->endpoint('POST /api/v1/events', fn () => PullStack::addByUser($u, self::message('message', ['text' => 'hi'])));
        });
        $this->assertIsString($result['id']);
        $events = $this->delivered($events);
        $this->assertCount(1, $events);
        $this->assertSame('im', $events[0]['module_id'], 'module_id is lower-cased as in Bitrix');
        $this->assertSame('message', $events[0]['command']);
        $this->assertSame(['text' => 'hi'], $events[0]['params']);
        $this->assertArrayHasKey('server_time', $events[0]['extra']);
    }

    public function testAddByUsersAndShared(): void
    {
        $u1 = self::user();
        $u2 = self::user();
        $r = $this->endpoint('POST /api/v1/events', fn () => PullStack::addByUsers([$u1, $u2], self::message('typing')));
        $this->assertIsString($r['id']);
        $events = $this->deliveredTo($u2, fn () => PullStack::addShared(self::message('broadcast')));
        $events = $this->delivered($events);
        $this->assertSame(['broadcast'], array_column($events, 'command'));
    }

    public function testInvalidEventNamesTheItem(): void
    {
        try {
            $this->endpoint('POST /api/v1/events', fn () => $this->client->publishEvents([
                ['users' => [1], 'module_id' => 'im', 'command' => 'ok'],
                ['module_id' => 'im', 'command' => 'no recipients'],
            ]));
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertStringStartsWith('events[1]', $e->getField());
        }
    }

    public function testWatchLifecycleAndAddToStack(): void
    {
        $u1 = self::user();
        $u2 = self::user();
        $tag = 'IM_CHAT_' . $u1;
        $this->assertTrue($this->endpoint('POST /api/v1/watch', fn () => PullWatch::add($u1, $tag)));
        PullWatch::add($u2, $tag, false, 600);

        $this->assertSame($this->sorted([(string) $u1 => (string) $u1, (string) $u2 => (string) $u2]), $this->sorted($this->endpoint('GET /api/v1/watch/{tag}', fn () => PullWatch::getUserList($tag))));

        $this->assertTrue($this->endpoint('POST /api/v1/watch/extend', fn () => PullWatch::extend($u1, $tag)));
        $this->assertSame([$tag => true, 'NOT_WATCHED' => false], PullWatch::extend($u1, [$tag, 'NOT_WATCHED']));

        // skip_users: the author does not get his own message.
        $forU2 = $this->deliveredTo($u2, fn () => PullWatch::addToStack($tag, self::message('chat') + ['skip_users' => [$u1]]));
        // A marker sent to u1 after the tag event: had the tag event reached
        // u1, it would come first.
        $forU1 = $this->deliveredTo($u1, function () use ($tag, $u1): void {
            PullWatch::addToStack($tag, self::message('chat2') + ['skip_users' => [$u1]]);
            PullStack::addByUser($u1, self::message('marker'));
        });

        $this->assertTrue($this->endpoint('DELETE /api/v1/watch', fn () => PullWatch::delete($u1, $tag)));
        $this->assertSame([(string) $u2 => (string) $u2], PullWatch::getUserList($tag));
        PullWatch::delete($u2);
        $this->assertSame([], PullWatch::getUserList($tag));

        $this->assertSame(['chat'], array_column($this->delivered($forU2), 'command'));
        $this->assertSame(['marker'], array_column($this->delivered($forU1), 'command'));
    }

    public function testOnline(): void
    {
        $u = self::user();
        $r = $this->endpoint('GET /api/v1/online', fn () => $this->client->online([$u]));
        $this->assertFalse($r['users'][(string) $u]['online']);
        $totals = $this->client->online();
        $this->assertIsArray($totals);
    }

    public function testBatchAgainstTheServer(): void
    {
        $u = self::user();
        $c = new Client($this->url, $this->key, ['max_items' => 2]);
        $out = null;
        $events = $this->deliveredTo($u, function () use ($c, $u, &$out): void {
            $out = $this->endpoint('POST /api/v1/events', fn () => $c->batch(function (Client $c) use ($u): void {
                for ($i = 0; $i < 5; $i++) {
                    $c->publishEvent(['users' => [$u], 'module_id' => 'im', 'command' => 'n' . $i, 'expiry' => 60]);
                }
            }));
        });
        $this->assertCount(5, $out['events']);
        $events = $this->delivered($events);
        $this->assertSame(['n0', 'n1', 'n2', 'n3', 'n4'], array_column($events, 'command'), 'order is kept across requests');
    }

    /**
     * @param array<string, string> $a
     * @return array<string, string>
     */
    private function sorted(array $a): array
    {
        ksort($a);
        return $a;
    }
}
