#include "CEmberKernels.h"

// One slot per thread: a module's forward runs synchronously on one thread.
static _Thread_local const void *eval_forward_owner;

const void *ember_eval_forward_owner(void) { return eval_forward_owner; }

void ember_set_eval_forward_owner(const void *owner) { eval_forward_owner = owner; }
