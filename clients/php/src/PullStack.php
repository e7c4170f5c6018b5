<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Bitrix\Messages;

/**
 * CPullStack, ported: sends an event to users' private channels or to
 * everyone. Messages are Bitrix arrays: `module_id`, `command`, `params`,
 * `extra`, `expiry` (seconds kept for resume; 0 = live only), `push` (a
 * CPushManager-style block sent as a mobile push to recipients who are not
 * connected) and `skip_users`.
 *
 * Each method returns the event's result (`id`, `online`, `pushed`,
 * `no_device`), or null inside {@see Client::batch()}, where the event is
 * sent at the end of the batch.
 */
final class PullStack
{
    /**
     * CPullStack::AddByUser.
     *
     * @param int|string $userId
     * @param array<string, mixed> $message
     * @return array<string, mixed>|null
     */
    public static function addByUser($userId, array $message): ?array
    {
        return self::send(['users' => [$userId]] + Messages::event($message));
    }

    /**
     * CPullStack::AddByUsers.
     *
     * @param list<int|string> $userIds
     * @param array<string, mixed> $message
     * @return array<string, mixed>|null
     */
    public static function addByUsers(array $userIds, array $message): ?array
    {
        return self::send(['users' => array_values($userIds)] + Messages::event($message));
    }

    /**
     * CPullStack::AddShared (and the deprecated AddBroadcast): every
     * connected client.
     *
     * @param array<string, mixed> $message
     * @return array<string, mixed>|null
     */
    public static function addShared(array $message): ?array
    {
        return self::send(['shared' => true] + Messages::event($message));
    }

    /**
     * @param array<string, mixed> $event
     * @return array<string, mixed>|null
     */
    private static function send(array $event): ?array
    {
        return PushPull::client()->publishEvent($event);
    }
}
