<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Exception\InvalidArgumentException;

/**
 * The device-token registry, from the backend side: for backends that
 * receive tokens themselves (Bitrix's save_device_token) rather than letting
 * the app call POST /sub/devices.
 */
final class Devices
{
    /**
     * Registers (or updates) a device of $userId.
     *
     * @param int|string $userId
     * @param string $platform apns | fcm
     * @param array<string, mixed> $options device_id, voip_token, app_id, sandbox, locale, timezone, name
     * @return array<string, mixed> `device`, `created`, `moved_from`
     */
    public static function register($userId, string $platform, string $token, array $options = []): array
    {
        return PushPull::client()->registerDevice($userId, ['platform' => $platform, 'token' => $token] + $options);
    }

    /**
     * Registers a device from Bitrix `b_pull_push` fields: DEVICE_TYPE
     * (APPLE, APPLE/VOIP → apns; GOOGLE, GOOGLE/REV2 → fcm), DEVICE_TOKEN,
     * VOIP_TOKEN, APP_ID (a "_bxdev" suffix means APNs sandbox, as in
     * Bitrix), UNIQUE_ID/DEVICE_ID, DEVICE_NAME.
     *
     * @param int|string $userId
     * @param array<string, mixed> $fields
     * @return array<string, mixed>
     */
    public static function registerBitrix($userId, array $fields): array
    {
        $f = array_change_key_case($fields, CASE_UPPER);
        $type = strtoupper((string) ($f['DEVICE_TYPE'] ?? ''));
        if (str_starts_with($type, 'APPLE')) {
            $platform = 'apns';
        } elseif (str_starts_with($type, 'GOOGLE') || str_starts_with($type, 'FIREBASE')) {
            $platform = 'fcm';
        } else {
            throw new InvalidArgumentException('invalid_argument', 'must be APPLE, APPLE/VOIP, GOOGLE or GOOGLE/REV2', 'DEVICE_TYPE');
        }
        $opts = [];
        $appId = (string) ($f['APP_ID'] ?? '');
        if (str_contains($appId, '_bxdev')) {
            $opts['sandbox'] = true;
            $appId = str_replace('_bxdev', '', $appId);
        }
        if ($appId !== '') {
            $opts['app_id'] = $appId;
        }
        $id = (string) ($f['DEVICE_ID'] ?? $f['UNIQUE_ID'] ?? '');
        if ($id !== '') {
            $opts['device_id'] = $id;
        }
        if (($f['VOIP_TOKEN'] ?? '') !== '') {
            $opts['voip_token'] = (string) $f['VOIP_TOKEN'];
        }
        if (($f['DEVICE_NAME'] ?? '') !== '') {
            $opts['name'] = (string) $f['DEVICE_NAME'];
        }
        return self::register($userId, $platform, (string) ($f['DEVICE_TOKEN'] ?? ''), $opts);
    }

    /**
     * The devices of $userId.
     *
     * @param int|string $userId
     * @return list<array<string, mixed>>
     */
    public static function listByUser($userId): array
    {
        return PushPull::client()->listDevices($userId);
    }

    /**
     * Removes a device by its id.
     *
     * @return array<string, mixed> the removed device
     */
    public static function delete(string $deviceId): array
    {
        $r = PushPull::client()->deleteDevice($deviceId);
        return $r['deleted'] ?? $r;
    }
}
