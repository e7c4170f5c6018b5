<?php

declare(strict_types=1);

namespace PushPull\Tests\Unit;

use PHPUnit\Framework\TestCase;
use PushPull\Internal\Splitter;

final class SplitterTest extends TestCase
{
    public function testPacksByItemCount(): void
    {
        $s = new Splitter(2, 100, 1 << 20);
        $items = [['n' => 1], ['n' => 2], ['n' => 3], ['n' => 4], ['n' => 5]];
        $this->assertSame([[['n' => 1], ['n' => 2]], [['n' => 3], ['n' => 4]], [['n' => 5]]], $s->pack($items));
    }

    public function testPacksByBodyBytesAndKeepsOrder(): void
    {
        $s = new Splitter(1000, 100, 2048);
        $items = [];
        for ($i = 0; $i < 10; $i++) {
            $items[] = ['i' => $i, 'pad' => str_repeat('x', 500)];
        }
        $reqs = $s->pack($items);
        $this->assertGreaterThan(1, count($reqs));
        $flat = array_merge(...$reqs);
        $this->assertSame($items, $flat, 'packing must keep every item, in order');
        foreach ($reqs as $r) {
            $this->assertLessThanOrEqual(2048, strlen(json_encode(['events' => $r])));
        }
    }

    public function testOversizedItemGoesAlone(): void
    {
        $s = new Splitter(1000, 100, 1024);
        $big = ['pad' => str_repeat('y', 5000)];
        $this->assertSame([[['a' => 1]], [$big], [['b' => 2]]], $s->pack([['a' => 1], $big, ['b' => 2]]));
    }

    public function testSplitsRecipientsKeepingTagsOnFirstPartAndSuffixingKeys(): void
    {
        $s = new Splitter(1000, 3, 1 << 20);
        $parts = $s->splitRecipients(['users' => ['1', '2', '3', '4', '5', '6', '7'], 'tags' => ['T'], 'skip_users' => ['9'], 'idempotency_key' => 'k']);
        $this->assertCount(3, $parts);
        $this->assertSame(['1', '2', '3'], $parts[0]['users']);
        $this->assertSame(['7'], $parts[2]['users']);
        $this->assertSame(['T'], $parts[0]['tags']);
        $this->assertArrayNotHasKey('tags', $parts[1], 'watchers of a tag must be reached once');
        $this->assertSame(['9'], $parts[2]['skip_users']);
        $this->assertSame(['k', 'k#1', 'k#2'], array_column($parts, 'idempotency_key'));
    }

    public function testSplitsDevices(): void
    {
        $s = new Splitter(1000, 2, 1 << 20);
        $parts = $s->splitRecipients(['devices' => [['t' => 1], ['t' => 2], ['t' => 3]]]);
        $this->assertSame([[['t' => 1], ['t' => 2]], [['t' => 3]]], array_column($parts, 'devices'));
    }

    public function testSmallItemUntouched(): void
    {
        $s = new Splitter(1000, 3, 1 << 20);
        $item = ['users' => ['1', '2', '3'], 'tags' => ['T']];
        $this->assertSame([$item], $s->splitRecipients($item));
    }
}
