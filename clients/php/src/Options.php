<?php

declare(strict_types=1);

namespace PushPull;

use PushPull\Exception\PushPullException;

/**
 * CPullOptions-style questions about the gateway itself.
 */
final class Options
{
    /**
     * True when the gateway answers /readyz with 200. Never throws: use it
     * to decide whether to fall back (as Bitrix checks GetQueueServerStatus).
     */
    public static function isServerAvailable(): bool
    {
        return self::status()['available'];
    }

    /**
     * The gateway's readiness and version.
     *
     * @return array{available: bool, status: string, version: string, error: string}
     */
    public static function status(): array
    {
        try {
            $r = PushPull::client()->ready();
            return [
                'available' => ($r['status'] ?? '') === 'ready',
                'status' => (string) ($r['status'] ?? ''),
                'version' => (string) ($r['version'] ?? ''),
                'error' => '',
            ];
        } catch (PushPullException $e) {
            return ['available' => false, 'status' => 'unavailable', 'version' => '', 'error' => $e->getMessage()];
        }
    }
}
