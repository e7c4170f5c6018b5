<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Bitrix\Messages;

/**
 * CPullWatch, ported: users watch tags (e.g. "IM_CHAT_17"); an event sent
 * to a tag reaches every watcher. A watch expires after its TTL (server
 * default 1860 s, as Bitrix) unless extended — by the backend here or by the
 * browser client's extendWatch().
 */
final class PullWatch
{
    /**
     * CPullWatch::Add. Bitrix defers the write to the end of the hit unless
     * $immediate; pushpull always writes at once, so $immediate is accepted
     * for compatibility and ignored.
     *
     * @param int|string|list<int|string> $userId
     * @param string|list<string> $tag
     * @param int|null $ttl seconds; null: the server default
     */
    public static function add($userId, $tag, bool $immediate = false, ?int $ttl = null): bool
    {
        PushPull::client()->watchAdd($userId, $tag, $ttl);
        return true;
    }

    /**
     * CPullWatch::Extend: renews watches. Like Bitrix, a single tag gives a
     * bool (whether the user watched it) and a list gives [tag => bool].
     *
     * @param int|string $userId
     * @param string|list<string> $tags
     * @return bool|array<string, bool>
     */
    public static function extend($userId, $tags)
    {
        $r = PushPull::client()->watchExtend($userId, $tags);
        $found = self::extendedTags($r);
        if (is_array($tags)) {
            $out = [];
            foreach ($tags as $t) {
                $out[(string) $t] = $found[(string) $t] ?? false;
            }
            return $out;
        }
        return $found[(string) $tags] ?? false;
    }

    /**
     * CPullWatch::Delete: one tag, or (null) all of the user's watches.
     *
     * @param int|string|list<int|string> $userId
     * @param string|list<string>|null $tag
     */
    public static function delete($userId, $tag = null): bool
    {
        PushPull::client()->watchDelete($userId, $tag);
        return true;
    }

    /**
     * CPullWatch::AddToStack: an event to everyone watching $tag, except
     * `skip_users` of the message.
     *
     * @param array<string, mixed> $message a Bitrix event message (see PullStack)
     * @return array<string, mixed>|null the result, or null while batching
     */
    public static function addToStack(string $tag, array $message): ?array
    {
        return PushPull::client()->publishEvent(['tags' => [$tag]] + Messages::event($message));
    }

    /**
     * CPullWatch::GetUserList: the watchers of $tag as [userId => userId].
     *
     * @return array<string, string>
     */
    public static function getUserList(string $tag): array
    {
        $r = PushPull::client()->watchList($tag);
        $users = $r['users'] ?? [];
        $out = [];
        foreach ($users as $k => $u) {
            // Accept a list of ids or a map keyed by id (with details).
            $id = is_array($u) ? (string) ($u['user'] ?? $u['id'] ?? $k) : (string) $u;
            $out[$id] = $id;
        }
        return $out;
    }

    /**
     * The tags the server reports as existing in an extend answer. Accepts
     * {"tags": {"T": true}}, {"extended": {"T": true}} or {"results": [{"tag": "T", "existed": true}]}.
     *
     * @param array<string, mixed> $r
     * @return array<string, bool>
     */
    private static function extendedTags(array $r): array
    {
        $found = [];
        foreach (['tags', 'extended', 'existed'] as $k) {
            if (isset($r[$k]) && is_array($r[$k]) && !array_is_list($r[$k])) {
                foreach ($r[$k] as $tag => $v) {
                    $found[(string) $tag] = is_array($v) ? (bool) ($v['existed'] ?? $v['exists'] ?? false) : (bool) $v;
                }
                return $found;
            }
        }
        foreach ($r['results'] ?? [] as $row) {
            if (is_array($row) && isset($row['tag'])) {
                $found[(string) $row['tag']] = (bool) ($row['existed'] ?? $row['exists'] ?? false);
            }
        }
        return $found;
    }
}
