//! A graph value's ops: each adds its node (or nodes) to the value's graph and returns the
//! result, keeping track of the columns of rows x columns values.

use super::{Attr, Graph, Value, pb};

impl Value {
    pub fn graph(&self) -> Graph {
        Graph { g: self.g.clone() }
    }

    /// An element-wise op of this value and others (broadcasting), keeping this value's columns.
    pub(super) fn elementwise(&self, op: &str, others: &[&Value]) -> Value {
        let mut inputs = vec![self];
        inputs.extend_from_slice(others);
        self.graph().op(op, &inputs, Vec::new(), self.cols)
    }

    pub fn add(&self, other: &Value) -> Value {
        self.elementwise("Add", &[other])
    }

    pub fn sub(&self, other: &Value) -> Value {
        self.elementwise("Sub", &[other])
    }

    pub fn mul(&self, other: &Value) -> Value {
        self.elementwise("Mul", &[other])
    }

    /// A unary op (Relu, Sigmoid, Tanh, Exp, Log, Abs, Neg...).
    pub fn unary(&self, op: &str) -> Value {
        self.elementwise(op, &[])
    }

    pub fn scaled(&self, c: f32) -> Value {
        self.mul(&self.graph().scalar(c))
    }

    /// self · `weight`ᵀ + `bias`, for a weight of `out` x `cols` (a dense layer).
    pub fn linear(&self, weight: &Value, bias: &Value, out: usize) -> Value {
        self.graph().op(
            "Gemm",
            &[self, weight, bias],
            vec![("transB", Attr::Int(1))],
            out,
        )
    }

    /// self · `m` for a matrix `m` of `cols` columns.
    pub fn matmul(&self, m: &Value, cols: usize) -> Value {
        self.graph().op("MatMul", &[self, m], Vec::new(), cols)
    }

    /// The transpose of a matrix whose rows are `cols` long after it.
    pub fn transposed(&self, cols: usize) -> Value {
        self.graph().op(
            "Transpose",
            &[self],
            vec![("perm", Attr::Ints(vec![1, 0]))],
            cols,
        )
    }

    /// Columns `from..from + n`.
    pub fn columns(&self, from: usize, n: usize) -> Value {
        let g = self.graph();
        let (s, e, axes) = (
            g.ints(&[from as i64]),
            g.ints(&[(from + n) as i64]),
            g.ints(&[1]),
        );
        g.op("Slice", &[self, &s, &e, &axes], Vec::new(), n)
    }

    /// Values side by side along `axis`.
    pub fn concat(values: &[Value], axis: i64) -> Value {
        let g = values[0].graph();
        let refs: Vec<&Value> = values.iter().collect();
        let cols = values.iter().map(|v| v.cols).sum();
        g.op("Concat", &refs, vec![("axis", Attr::Int(axis))], cols)
    }

    pub fn reshape(&self, shape: &[i64], cols: usize) -> Value {
        let g = self.graph();
        let s = g.ints(shape);
        g.op("Reshape", &[self, &s], Vec::new(), cols)
    }

    /// The sum over `axis`, kept as a dimension of 1 when `keep`.
    pub fn sum(&self, axis: i64, keep: bool, cols: usize) -> Value {
        let g = self.graph();
        let axes = g.ints(&[axis]);
        g.op(
            "ReduceSum",
            &[self, &axes],
            vec![("keepdims", Attr::Int(keep as i64))],
            cols,
        )
    }

    /// The maximum over `axis`, which is dropped.
    pub fn max_over(&self, axis: i64, cols: usize) -> Value {
        self.graph().op(
            "ReduceMax",
            &[self],
            vec![("axes", Attr::Ints(vec![axis])), ("keepdims", Attr::Int(0))],
            cols,
        )
    }

    /// 1 where this int64 value is above 0, else 0, as floats.
    pub fn positive(&self) -> Value {
        let g = self.graph();
        let above = g.op("Greater", &[self, &g.ints(&[0])], Vec::new(), self.cols);
        g.op(
            "Cast",
            &[&above],
            vec![("to", Attr::Int(pb::tensor_proto::DataType::Float as i64))],
            self.cols,
        )
    }

    pub fn div(&self, other: &Value) -> Value {
        self.elementwise("Div", &[other])
    }

    pub fn softmax(&self, axis: i64) -> Value {
        self.graph().op(
            "Softmax",
            &[self],
            vec![("axis", Attr::Int(axis))],
            self.cols,
        )
    }

    /// Rows of `table` (a constant of `dim` columns) at the ids of this int64 vector.
    pub fn gather_rows(&self, table: &Value, dim: usize) -> Value {
        self.graph()
            .op("Gather", &[table, self], vec![("axis", Attr::Int(0))], dim)
    }

    /// This value broadcast to the shape of `like`.
    pub fn expand_like(&self, like: &Value) -> Value {
        let g = self.graph();
        let shape = g.op("Shape", &[like], Vec::new(), 0);
        g.op("Expand", &[self, &shape], Vec::new(), like.cols)
    }

    /// This value reshaped to the shape of `like`.
    pub fn reshape_like(&self, like: &Value) -> Value {
        let g = self.graph();
        let shape = g.op("Shape", &[like], Vec::new(), 0);
        g.op("Reshape", &[self, &shape], Vec::new(), like.cols)
    }

    /// A vector of rows (the column's values).
    pub fn flatten_rows(&self) -> Value {
        self.reshape(&[-1], 0)
    }
}
