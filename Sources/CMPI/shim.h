// Open MPI's C API for Swift. The predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are
// macros over addresses of globals, which Swift does not import: these functions return them.
#ifndef EMBER_CMPI_SHIM_H
#define EMBER_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype cmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype cmpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op cmpi_sum(void) { return MPI_SUM; }
static inline MPI_Op cmpi_max(void) { return MPI_MAX; }
static inline MPI_Op cmpi_min(void) { return MPI_MIN; }
static inline void *cmpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int cmpi_success(void) { return MPI_SUCCESS; }
static inline int cmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int cmpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline MPI_Status *cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Request cmpi_request_null(void) { return MPI_REQUEST_NULL; }

#endif
