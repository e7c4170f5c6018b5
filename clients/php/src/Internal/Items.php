<?php

declare(strict_types=1);

namespace PushPull\Internal;

use PushPull\Exception\InvalidArgumentException;

/**
 * Shapes events and notifications for the wire, and merges the results of
 * items the Splitter divided.
 *
 * @internal
 */
final class Items
{
    /**
     * Merges the results of the parts of a split item: lists are joined,
     * counts added, other values taken from the first part; `ids` lists
     * every part's id.
     *
     * @param list<array<string, mixed>> $rs
     * @return array<string, mixed>
     */
    public static function mergeResults(array $rs): array
    {
        $m = $rs[0];
        $m['ids'] = array_column($rs, 'id');
        foreach (array_slice($rs, 1) as $r) {
            foreach ($r as $key => $v) {
                if (!array_key_exists($key, $m)) {
                    $m[$key] = $v;
                } elseif (is_array($v) && is_array($m[$key]) && array_is_list($v)) {
                    $m[$key] = array_merge($m[$key], $v);
                } elseif (is_int($v) && is_int($m[$key])) {
                    $m[$key] += $v;
                }
            }
        }
        return $m;
    }

    /**
     * @param mixed $e
     * @return array<string, mixed>
     */
    public static function normalizeEvent($e, string $field): array
    {
        if (!is_array($e)) {
            throw new InvalidArgumentException('invalid_argument', 'must be an array', $field);
        }
        foreach (['users', 'skip_users', 'tags'] as $k) {
            if (isset($e[$k])) {
                $e[$k] = Ids::list($e[$k], $field . '.' . $k);
            }
        }
        if (array_key_exists('params', $e) && $e['params'] === []) {
            $e['params'] = new \stdClass();
        }
        if (array_key_exists('extra', $e)) {
            $e['extra'] = Json::object($e['extra']);
        }
        if (isset($e['push']) && is_array($e['push'])) {
            foreach (['data', 'apns', 'fcm'] as $k) {
                if (array_key_exists($k, $e['push'])) {
                    $e['push'][$k] = Json::object($e['push'][$k]);
                }
            }
        }
        return $e;
    }

    /**
     * @param mixed $n
     * @return array<string, mixed>
     */
    public static function normalizeNotification($n, string $field, bool $autoIdempotency): array
    {
        if (!is_array($n)) {
            throw new InvalidArgumentException('invalid_argument', 'must be an array', $field);
        }
        foreach (['users', 'skip_users'] as $k) {
            if (isset($n[$k])) {
                $n[$k] = Ids::list($n[$k], $field . '.' . $k);
            }
        }
        foreach (['data', 'apns', 'fcm'] as $k) {
            if (array_key_exists($k, $n)) {
                $n[$k] = Json::object($n[$k]);
            }
        }
        if ($autoIdempotency && !isset($n['idempotency_key'])) {
            // Generated once, before the first attempt: a retry carries the
            // same key, so the server sends nothing twice.
            $n['idempotency_key'] = 'php-' . bin2hex(random_bytes(12));
        }
        return $n;
    }
}
