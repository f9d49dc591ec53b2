// OpenMPI defines its handles and special values as macros that Swift cannot import.
// Each getter below returns one of them; nothing else lives here.
#ifndef PILOT_CMPI_SHIM_H
#define PILOT_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm pilot_MPI_COMM_WORLD(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm pilot_MPI_COMM_NULL(void) { return MPI_COMM_NULL; }
static inline MPI_Comm pilot_MPI_COMM_SELF(void) { return MPI_COMM_SELF; }
static inline MPI_Datatype pilot_MPI_FLOAT(void) { return MPI_FLOAT; }
static inline MPI_Datatype pilot_MPI_DOUBLE(void) { return MPI_DOUBLE; }
static inline MPI_Datatype pilot_MPI_INT64_T(void) { return MPI_INT64_T; }
static inline MPI_Datatype pilot_MPI_UINT8_T(void) { return MPI_UINT8_T; }
static inline MPI_Datatype pilot_MPI_INT32(void) { return MPI_INT32_T; }
static inline MPI_Op pilot_MPI_SUM(void) { return MPI_SUM; }
static inline MPI_Op pilot_MPI_MAX(void) { return MPI_MAX; }
static inline void *pilot_MPI_IN_PLACE(void) { return MPI_IN_PLACE; }
static inline MPI_Status *pilot_MPI_STATUS_IGNORE(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler pilot_MPI_ERRORS_RETURN(void) { return MPI_ERRORS_RETURN; }
static inline int pilot_MPI_UNDEFINED(void) { return MPI_UNDEFINED; }
static inline int pilot_MPI_SUCCESS(void) { return MPI_SUCCESS; }
static inline int pilot_MPI_MAX_ERROR_STRING(void) { return MPI_MAX_ERROR_STRING; }
static inline int pilot_MPI_MAX_PROCESSOR_NAME(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int pilot_MPI_THREAD_FUNNELED(void) { return MPI_THREAD_FUNNELED; }

#endif
