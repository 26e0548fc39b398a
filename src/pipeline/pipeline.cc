// The pipeline library's parts live in their own files (pipeline.h).
#include "pipeline/pipeline.h"
