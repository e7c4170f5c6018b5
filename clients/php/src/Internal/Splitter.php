<?php

declare(strict_types=1);

namespace PushPull\Internal;

/**
 * Splits events and notifications into as few requests as the server's
 * limits allow (items per request, recipients per item, body bytes). Pure:
 * no I/O, so the packing rules are unit-tested without a server.
 *
 * @internal
 */
final class Splitter
{
    /** Bytes kept free in a body for the envelope (`{"events":[...]}`). */
    private const ENVELOPE = 64;

    private int $maxItems;
    private int $maxRecipients;
    private int $maxBodyBytes;

    public function __construct(int $maxItems, int $maxRecipients, int $maxBodyBytes)
    {
        $this->maxItems = $maxItems;
        $this->maxRecipients = $maxRecipients;
        $this->maxBodyBytes = $maxBodyBytes;
    }

    /**
     * Splits one item whose `users` (or `devices`) list is longer than the
     * per-item limit into several items with the same content. Tags go with
     * the first part only, so a watcher is not reached twice; skip_users go
     * with every part. An idempotency key gets a "#n" suffix on part n > 0,
     * so a retried batch is still recognised part by part.
     *
     * @param array<string, mixed> $item
     * @return list<array<string, mixed>>
     */
    public function splitRecipients(array $item): array
    {
        $key = null;
        foreach (['users', 'devices'] as $k) {
            if (isset($item[$k]) && is_array($item[$k]) && count($item[$k]) > $this->maxRecipients) {
                $key = $k;
                break;
            }
        }
        if ($key === null) {
            return [$item];
        }
        $out = [];
        foreach (array_chunk($item[$key], $this->maxRecipients) as $n => $chunk) {
            $part = $item;
            $part[$key] = $chunk;
            if ($n > 0) {
                unset($part['tags']);
                unset($part['shared']);
                if (isset($part['idempotency_key']) && is_string($part['idempotency_key'])) {
                    $part['idempotency_key'] .= '#' . $n;
                }
            }
            $out[] = $part;
        }
        return $out;
    }

    /**
     * Packs items, in order, into request bodies of at most maxItems items
     * and maxBodyBytes bytes. An item too big for any body is sent alone:
     * the server then names it in its payload_too_large answer.
     *
     * @param list<array<string, mixed>> $items
     * @return list<list<array<string, mixed>>>
     */
    public function pack(array $items): array
    {
        $requests = [];
        $cur = [];
        $size = self::ENVELOPE;
        foreach ($items as $item) {
            $len = strlen(Json::encode($item)) + 1; // +1: the comma
            if ($cur && (count($cur) >= $this->maxItems || $size + $len > $this->maxBodyBytes)) {
                $requests[] = $cur;
                $cur = [];
                $size = self::ENVELOPE;
            }
            $cur[] = $item;
            $size += $len;
        }
        if ($cur) {
            $requests[] = $cur;
        }
        return $requests;
    }

    /**
     * splitRecipients on every item, then pack.
     *
     * @param list<array<string, mixed>> $items
     * @return list<list<array<string, mixed>>>
     */
    public function requests(array $items): array
    {
        $all = [];
        foreach ($items as $item) {
            foreach ($this->splitRecipients($item) as $part) {
                $all[] = $part;
            }
        }
        return $this->pack($all);
    }
}
