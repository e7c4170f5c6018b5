<?php

declare(strict_types=1);

namespace PushPull\Bitrix;

use PushPull\Exception\InvalidArgumentException;
use PushPull\Internal\Ids;
use PushPull\Internal\Json;

/**
 * Translates Bitrix `pull` module arrays into pushpull API items, so code
 * written for CPullStack / CPullWatch / CPushManager keeps its arrays.
 *
 * Keys are matched case-insensitively (Bitrix uses `MESSAGE` in
 * CPushManager and `message` in an event's `push` block); the plain API
 * names (`body`, `data`, `users`, ...) are accepted too. An unknown key is an
 * InvalidArgumentException naming it, rather than a silently lost option.
 */
final class Messages
{
    /** Bitrix sends queue rows older than this (seconds) for SEND_DEFERRED. */
    public const DEFERRED_DELAY = 15;

    /** Notification keys passed through unchanged (lower-case API names). */
    private const PASS = [
        'title', 'subtitle', 'body', 'tag', 'sub_tag', 'sound', 'app_id', 'category', 'thread_id',
        'collapse_id', 'priority', 'push_type', 'content_available', 'mutable_content', 'send_at',
        'delay', 'when_online', 'idempotency_key', 'apns', 'fcm', 'devices',
    ];

    /** ADVANCED_PARAMS keys that become notification fields instead of data. */
    private const CONSUMED_ADVANCED = ['sendername', 'sendermessage', 'category', 'isvoip'];

    /**
     * A Bitrix event message (`module_id`, `command`, `params`, `extra`,
     * `expiry`, `push`, `skip_users`) as an API event without recipients.
     * Recipient keys of the API shape (`users`, `tags`, `shared`) and
     * `ack_timeout` pass through.
     *
     * @param array<string, mixed> $message
     * @return array<string, mixed>
     * @throws InvalidArgumentException naming the bad key
     */
    public static function event(array $message, string $field = 'message'): array
    {
        $out = [];
        foreach ($message as $key => $v) {
            $k = strtolower((string) $key);
            switch ($k) {
                case 'module_id':
                case 'command':
                    if (!is_string($v) || $v === '') {
                        throw new InvalidArgumentException('invalid_argument', 'must be a non-empty string', $field . '.' . $k);
                    }
                    $out[$k] = $v;
                    break;
                case 'params':
                    $out['params'] = $v === [] ? new \stdClass() : $v;
                    break;
                case 'extra':
                    $out['extra'] = Json::object($v);
                    break;
                case 'expiry':
                    $out['expiry'] = self::int($v, $field . '.expiry');
                    break;
                case 'skip_users':
                case 'users':
                case 'tags':
                    $out[$k] = Ids::list($v, $field . '.' . $k);
                    break;
                case 'shared':
                    $out['shared'] = (bool) $v;
                    break;
                case 'ack_timeout':
                    $out['ack_timeout'] = is_int($v) ? $v . 's' : $v;
                    break;
                case 'push':
                    if ($v === null || $v === [] || $v === false) {
                        break;
                    }
                    if (!is_array($v)) {
                        throw new InvalidArgumentException('invalid_argument', 'must be an array', $field . '.push');
                    }
                    $push = self::notification($v, $field . '.push');
                    unset($push['users'], $push['skip_users'], $push['devices']);
                    $out['push'] = $push;
                    break;
                default:
                    throw new InvalidArgumentException('invalid_argument', 'unknown key (expected module_id, command, params, extra, expiry, push, skip_users)', $field . '.' . $key);
            }
        }
        foreach (['module_id', 'command'] as $k) {
            if (!isset($out[$k])) {
                throw new InvalidArgumentException('invalid_argument', 'required', $field . '.' . $k);
            }
        }
        return $out;
    }

    /**
     * A CPushManager message (`USER_ID`, `MESSAGE`, `TITLE`, `PARAMS`,
     * `TAG`, `SUB_TAG`, `BADGE`, `SOUND`, `EXPIRY`, `APP_ID`,
     * `SEND_IMMEDIATELY`, `SEND_DEFERRED`, `IMPORTANT`, `SKIP_USERS`,
     * `ADVANCED_PARAMS`) as an API notification. Mapping:
     *
     * - MESSAGE → body, TITLE → title; ADVANCED_PARAMS senderMessage /
     *   senderName override them (as the Bitrix Apple payload does);
     * - PARAMS (array, or JSON text) → data; PARAMS.CATEGORY or
     *   ADVANCED_PARAMS.category → category; other ADVANCED_PARAMS keys
     *   (id, extra, avatarUrl, notificationsToCancel, ...) join data;
     *   ADVANCED_PARAMS.isVoip → push_type voip;
     * - BADGE < 0 or "" (Bitrix for "none") and EXPIRY < 0 are left out;
     * - SEND_IMMEDIATELY=Y → when_online send; IMPORTANT=Y → also priority
     *   high; SEND_DEFERRED=Y → delay 15 s (Bitrix's agent threshold).
     *
     * @param array<string, mixed> $m
     * @return array<string, mixed>
     * @throws InvalidArgumentException naming the bad key
     */
    public static function notification(array $m, string $field = 'message'): array
    {
        $out = [];
        $data = [];
        $advanced = [];
        foreach ($m as $key => $v) {
            $k = strtolower((string) $key);
            $f = $field . '.' . $key;
            if (in_array($k, self::PASS, true)) {
                if ($v !== null && $v !== '') {
                    $out[$k] = $v;
                }
                continue;
            }
            switch ($k) {
                case 'user_id':
                case 'users':
                    $out['users'] = Ids::list($v, $f);
                    break;
                case 'skip_users':
                    if ($v) {
                        $out['skip_users'] = Ids::list($v, $f);
                    }
                    break;
                case 'message':
                    if (is_string($v) && trim($v) !== '') {
                        $out['body'] = trim($v);
                    }
                    break;
                case 'params':
                    $data = self::params($v, $f, $out) + $data;
                    break;
                case 'data':
                    if (is_array($v)) {
                        $data = $v + $data;
                    }
                    break;
                case 'advanced_params':
                    if (!is_array($v)) {
                        throw new InvalidArgumentException('invalid_argument', 'must be an array', $f);
                    }
                    $advanced = $v;
                    break;
                case 'badge':
                    if ($v !== '' && $v !== null && (int) $v >= 0) {
                        $out['badge'] = self::int($v, $f);
                    }
                    break;
                case 'expiry':
                    if ($v !== '' && $v !== null && (int) $v >= 0) {
                        $out['expiry'] = self::int($v, $f);
                    }
                    break;
                case 'send_immediately':
                    if (self::yes($v)) {
                        $out['when_online'] = 'send';
                    }
                    break;
                case 'important':
                    if (self::yes($v)) {
                        $out['when_online'] = 'send';
                        $out['priority'] = 'high';
                    }
                    break;
                case 'send_deferred':
                    if (self::yes($v)) {
                        $out['delay'] = self::DEFERRED_DELAY;
                    }
                    break;
                default:
                    throw new InvalidArgumentException('invalid_argument', 'unknown key', $f);
            }
        }
        foreach ($advanced as $key => $v) {
            switch (strtolower((string) $key)) {
                case 'sendername':
                    if (is_string($v) && $v !== '') {
                        $out['title'] = $v;
                    }
                    break;
                case 'sendermessage':
                    if (is_string($v) && $v !== '') {
                        $out['body'] = $v;
                    }
                    break;
                case 'category':
                    if (is_string($v) && $v !== '') {
                        $out['category'] = $v;
                    }
                    break;
                case 'isvoip':
                    if ($v) {
                        $out['push_type'] = 'voip';
                    }
                    break;
                default:
                    if (!array_key_exists($key, $data)) {
                        $data[$key] = $v;
                    }
            }
        }
        if ($data) {
            $out['data'] = $data;
        }
        return $out;
    }

    /**
     * Bitrix PARAMS: an array, or a string holding JSON (as CPushManager
     * stores it), or plain text (kept under "params"). CATEGORY moves to
     * the notification's category.
     *
     * @param mixed $v
     * @param array<string, mixed> $out
     * @return array<string, mixed>
     */
    private static function params($v, string $field, array &$out): array
    {
        if ($v === null || $v === '' || $v === []) {
            return [];
        }
        if (is_string($v)) {
            $decoded = json_decode($v, true);
            $v = is_array($decoded) && !array_is_list($decoded) ? $decoded : ['params' => $v];
        }
        if (!is_array($v)) {
            return ['params' => $v];
        }
        foreach ($v as $k => $x) {
            if (is_string($k) && strtoupper($k) === 'CATEGORY') {
                if (is_string($x) && $x !== '') {
                    $out['category'] = $x;
                }
                unset($v[$k]);
            }
        }
        return $v;
    }

    /** Bitrix booleans: 'Y', true, 1. */
    private static function yes($v): bool
    {
        return $v === true || $v === 1 || (is_string($v) && strtoupper($v) === 'Y');
    }

    /**
     * @param mixed $v
     */
    private static function int($v, string $field): int
    {
        if (is_int($v)) {
            return $v;
        }
        if (is_string($v) && preg_match('/^-?\d+$/', trim($v))) {
            return (int) $v;
        }
        throw new InvalidArgumentException('invalid_argument', 'must be an integer', $field);
    }
}
