<?php

declare(strict_types=1);

namespace PushPull\Internal;

use PushPull\Exception\InvalidArgumentException;

/**
 * JSON encoding with the flags this library needs everywhere.
 *
 * @internal
 */
final class Json
{
    /**
     * Encodes $v compactly; unencodable input (invalid UTF-8, INF) is an
     * InvalidArgumentException, not a silent `false`.
     *
     * @param mixed $v
     */
    public static function encode($v): string
    {
        try {
            return json_encode($v, JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION);
        } catch (\JsonException $e) {
            throw new InvalidArgumentException('invalid_argument', 'cannot encode as JSON: ' . $e->getMessage());
        }
    }

    /**
     * Returns $v as a JSON object: an empty PHP array would otherwise be
     * sent as `[]`, which the server rejects where it expects an object.
     *
     * @param mixed $v
     * @return mixed
     */
    public static function object($v)
    {
        if ($v === [] || $v === null) {
            return new \stdClass();
        }
        return $v;
    }
}
