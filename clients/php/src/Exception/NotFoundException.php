<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * 404 not_found: the object (push id, device, tag) does not exist, or — see
 * {@see isNoSuchEndpoint()} — the server does not serve this endpoint at all
 * (an older pushpull, or a wrong base URL).
 */
class NotFoundException extends ApiException
{
    /** True when the server has no such route, rather than no such object. */
    public function isNoSuchEndpoint(): bool
    {
        return $this->getErrorMessage() === 'no such endpoint';
    }
}
