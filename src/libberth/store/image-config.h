// The parts of an OCI image config that become a container's defaults (defined in types.h).
#pragma once

#include "store/types.h"
