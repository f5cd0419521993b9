#include "kme/key_vault.h"
