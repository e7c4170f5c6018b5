<?php

declare(strict_types=1);

namespace PushPull\Internal;

use PushPull\Client;

/**
 * The batching half of {@see Client}: buffering events and pushes, and
 * sending item lists in as few requests as the limits allow. A trait so
 * that Client stays one object for the caller while each file holds one
 * concern.
 *
 * @internal
 */
trait Batching
{
    private int $batchDepth = 0;
    /** @var list<array<string, mixed>> */
    private array $bufEvents = [];
    /** @var list<array<string, mixed>> */
    private array $bufPush = [];

    /**
     * Sends what a forgotten batch still holds. Errors cannot be thrown from
     * a destructor, so they are written to the PHP error log.
     */
    public function __destruct()
    {
        if ($this->bufEvents || $this->bufPush) {
            try {
                $this->flush();
            } catch (\Throwable $e) {
                error_log('pushpull: flushing a batch on destruct failed: ' . $e->getMessage());
            }
        }
    }

    // ---- batching -------------------------------------------------------------

    /**
     * Runs $fn with events and pushes buffered, then sends them in as few
     * requests as the limits allow (as Bitrix buffers until the end of the
     * hit). Nested calls join the outer batch. If $fn throws, nothing
     * buffered is sent and the exception propagates.
     *
     * @param callable(Client):void $fn
     * @return array{events: list<array<string, mixed>>, push: list<array<string, mixed>>} results, in call order
     */
    public function batch(callable $fn): array
    {
        $this->beginBatch();
        try {
            $fn($this);
        } catch (\Throwable $e) {
            $this->batchDepth--;
            if ($this->batchDepth === 0) {
                $this->discard();
            }
            throw $e;
        }
        $this->batchDepth--;
        if ($this->batchDepth > 0) {
            return ['events' => [], 'push' => []];
        }
        return $this->flush();
    }

    /**
     * Starts buffering events and pushes until {@see flush()} (or until the
     * Client is destroyed, which flushes what is left).
     */
    public function beginBatch(): void
    {
        $this->batchDepth++;
    }

    /** True while calls are being buffered. */
    public function inBatch(): bool
    {
        return $this->batchDepth > 0;
    }

    /** How many events and notifications are buffered. */
    public function pending(): int
    {
        return count($this->bufEvents) + count($this->bufPush);
    }

    /** Drops everything buffered and ends batching. */
    public function discard(): void
    {
        $this->bufEvents = [];
        $this->bufPush = [];
        $this->batchDepth = 0;
    }

    /**
     * Ends batching and sends what is buffered: events first, then pushes.
     *
     * @return array{events: list<array<string, mixed>>, push: list<array<string, mixed>>}
     */
    public function flush(): array
    {
        $events = $this->bufEvents;
        $push = $this->bufPush;
        $this->discard();
        $out = ['events' => [], 'push' => []];
        if ($events) {
            $out['events'] = $this->send('/api/v1/events', 'events', $events, Http::RETRY_UNSAFE);
        }
        if ($push) {
            $out['push'] = $this->send('/api/v1/push', 'notifications', $push, Http::RETRY_IDEMPOTENT);
        }
        return $out;
    }

    /**
     * Sends items in as few requests as the limits allow and returns one
     * result per item (results of split items merged).
     *
     * @param list<array<string, mixed>> $items
     * @return list<array<string, mixed>>
     */
    private function send(string $path, string $list, array $items, int $retry): array
    {
        $parts = [];   // [origin index, part]
        foreach ($items as $i => $item) {
            foreach ($this->splitter->splitRecipients($item) as $p) {
                $parts[] = [$i, $p];
            }
        }
        $packed = $this->splitter->pack(array_column($parts, 1));
        $byOrigin = [];
        $k = 0;
        foreach ($packed as $req) {
            $r = $this->http->call('POST', $path, null, [$list => $req], $retry);
            $results = $r['results'] ?? [];
            foreach ($req as $j => $_) {
                $byOrigin[$parts[$k][0]][] = $results[$j] ?? [];
                $k++;
            }
        }
        $out = [];
        foreach ($byOrigin as $rs) {
            $out[] = count($rs) === 1 ? $rs[0] : Items::mergeResults($rs);
        }
        return $out;
    }
}
