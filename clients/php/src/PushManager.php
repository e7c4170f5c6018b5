<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Bitrix\Messages;
use PushPull\Exception\InvalidArgumentException;

/**
 * CPushManager, ported: mobile pushes through pushpull's durable queue
 * instead of the Bitrix cloud relay. Accepts Bitrix message arrays
 * (`USER_ID`, `MESSAGE`, `TITLE`, `PARAMS`, `TAG`, `SUB_TAG`, `BADGE`,
 * `SOUND`, `EXPIRY`, `APP_ID`, `SEND_IMMEDIATELY`, `ADVANCED_PARAMS`, ...;
 * see {@see Messages::notification()} for the mapping) as well as the plain
 * API shape.
 *
 * The methods are static; Bitrix's `(new CPushManager())->AddQueue($m)`
 * works unchanged as `(new PushManager())->addQueue($m)`.
 *
 * Differences from Bitrix: a missing APP_ID means "every app of the user"
 * rather than "Bitrix24"; online users still get the push unless
 * `WHEN_ONLINE` says otherwise (Bitrix decides from its own online data);
 * the deferral Bitrix applies to web-online users is pushpull's job
 * (events with a push block and `ack_timeout`).
 */
final class PushManager
{
    /**
     * CPushManager::AddQueue: one notification to one user or a list
     * (`USER_ID`).
     *
     * @param array<string, mixed> $arMessage
     * @return array<string, mixed>|null the result (`id`, `jobs`, `skipped_online`, `no_device`), or null while batching
     */
    public static function addQueue(array $arMessage): ?array
    {
        return PushPull::client()->pushOne(self::toNotification($arMessage, 'message'));
    }

    /**
     * CPushManager::SendMessage: several messages (each with its own
     * USER_ID) in one request, sent whether or not the users are online.
     *
     * @param list<array<string, mixed>> $arMessages
     * @return list<array<string, mixed>>|null one result per message, or null while batching
     */
    public static function sendMessage(array $arMessages): ?array
    {
        $items = [];
        foreach (array_values($arMessages) as $i => $m) {
            if (!is_array($m)) {
                throw new InvalidArgumentException('invalid_argument', 'must be an array', 'messages[' . $i . ']');
            }
            $items[] = self::toNotification($m, 'messages[' . $i . ']') + ['when_online' => 'send'];
        }
        if (!$items) {
            return [];
        }
        return PushPull::client()->push($items);
    }

    /**
     * CPushManager::DeleteFromQueueByTag: cancels this user's queued pushes
     * with $tag.
     *
     * @param int|string|list<int|string> $userId
     * @return int how many queued jobs were removed
     */
    public static function deleteFromQueueByTag($userId, string $tag): int
    {
        return self::cancelled(PushPull::client()->cancelPush($userId, $tag, null));
    }

    /**
     * CPushManager::DeleteFromQueueBySubTag: cancels this user's queued
     * pushes with $subTag.
     *
     * @param int|string|list<int|string> $userId
     * @return int how many queued jobs were removed
     */
    public static function deleteFromQueueBySubTag($userId, string $subTag): int
    {
        return self::cancelled(PushPull::client()->cancelPush($userId, null, $subTag));
    }

    /**
     * @param array<string, mixed> $m
     * @return array<string, mixed>
     */
    private static function toNotification(array $m, string $field): array
    {
        $n = Messages::notification($m, $field);
        if (empty($n['users']) && empty($n['devices'])) {
            throw new InvalidArgumentException('invalid_argument', 'required (or DEVICES)', $field . '.USER_ID');
        }
        return $n;
    }

    /**
     * @param array<string, mixed> $r
     */
    private static function cancelled(array $r): int
    {
        foreach (['cancelled', 'canceled', 'removed', 'deleted', 'count'] as $k) {
            if (isset($r[$k]) && is_numeric($r[$k])) {
                return (int) $r[$k];
            }
        }
        return 0;
    }
}
