#include "kme/etsi014_server.h"
