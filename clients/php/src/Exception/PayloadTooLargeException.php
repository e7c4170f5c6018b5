<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * 413 payload_too_large: the body, or a push payload (APNs 4096 bytes, FCM 4096 bytes of data), is too big.
 */
class PayloadTooLargeException extends ApiException
{
}
