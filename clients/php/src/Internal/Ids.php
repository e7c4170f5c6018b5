<?php

declare(strict_types=1);

namespace PushPull\Internal;

use PushPull\Exception\InvalidArgumentException;

/**
 * Normalises user ids and tags: the API takes strings, PHP code passes ints.
 *
 * @internal
 */
final class Ids
{
    /**
     * Returns $v (one id or a list of ids) as a list of non-empty strings,
     * without duplicates, in first-seen order.
     *
     * @param mixed $v
     * @return list<string>
     * @throws InvalidArgumentException naming $field
     */
    public static function list($v, string $field): array
    {
        if (!is_array($v)) {
            $v = [$v];
        }
        $out = [];
        foreach (array_values($v) as $i => $id) {
            $out[] = self::one($id, $field . '[' . $i . ']');
        }
        return array_values(array_unique($out));
    }

    /**
     * Returns one id as a non-empty string.
     *
     * @param mixed $id
     * @throws InvalidArgumentException naming $field
     */
    public static function one($id, string $field): string
    {
        if (is_int($id)) {
            return (string) $id;
        }
        if (is_string($id) && trim($id) !== '') {
            return trim($id);
        }
        throw new InvalidArgumentException('invalid_argument', 'must be a non-empty string or an integer, not ' . get_debug_type($id), $field);
    }
}
