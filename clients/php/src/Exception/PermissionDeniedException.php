<?php

declare(strict_types=1);

namespace PushPull\Exception;

/**
 * 403 permission_denied.
 */
class PermissionDeniedException extends ApiException
{
}
