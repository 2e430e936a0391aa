#include "br-api.h"
int br_api_dashboard(BrCall *c) { return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "todo"); }
int br_api_queue(BrCall *c) { return cm_error_set(&c->err, CM_ERROR_NOT_FOUND, "", "todo"); }
