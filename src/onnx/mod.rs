//! Writing an ONNX graph (opset 17): a builder of nodes, constants, inputs and outputs over the
//! protobuf messages of the official schema (`pb`, encoded by prost), and the funnel's
//! log-space arithmetic (`LogSpace`) over a graph's values, so an exported model computes each
//! stage's probabilities by the very formulas `Funnel::log_probs` states.

#[rustfmt::skip]
pub mod pb;

use std::cell::RefCell;
use std::rc::Rc;

use prost::Message;

use crate::funnel::{Funnel, LogSpace};

/// The operator set the graphs use: ONNX 1.12's, read by ONNX Runtime ≥ 1.12 and tract.
pub const OPSET: i64 = 17;
/// The IR version of opset 17.
const IR_VERSION: i64 = 8;

/// A value of the graph: a node's output, an input or a constant, by name, with its columns
/// where it is a matrix of rows (what `LogSpace` reads).
#[derive(Clone)]
pub struct Value {
    g: Rc<RefCell<Nodes>>,
    pub name: String,
    /// Columns of a rows x columns value; 0 where that means nothing.
    pub cols: usize,
}

#[derive(Default)]
struct Nodes {
    nodes: Vec<pb::NodeProto>,
    constants: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    next: usize,
}

/// A graph under construction.
#[derive(Clone, Default)]
pub struct Graph {
    g: Rc<RefCell<Nodes>>,
}

/// A node attribute.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
}

/// The element types of the graph's inputs.
#[derive(Clone, Copy)]
pub enum Elem {
    F32,
    I64,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    fn value(&self, name: String, cols: usize) -> Value {
        Value {
            g: self.g.clone(),
            name,
            cols,
        }
    }

    /// A rows x `cols` input (a vector of rows when `cols` is `None`), the rows dynamic
    /// (`batch`).
    pub fn input(&self, name: &str, elem: Elem, cols: Option<usize>) -> Value {
        let mut dims = vec![dim_param("batch")];
        dims.extend(cols.map(|c| dim_value(c as i64)));
        self.g
            .borrow_mut()
            .inputs
            .push(value_info(name, elem, dims));
        self.value(name.to_string(), cols.unwrap_or(0))
    }

    /// A rows x width input whose width is dynamic too (`width`, a padded list per row).
    pub fn padded_input(&self, name: &str, elem: Elem, width: &str) -> Value {
        let dims = vec![dim_param("batch"), dim_param(width)];
        self.g
            .borrow_mut()
            .inputs
            .push(value_info(name, elem, dims));
        self.value(name.to_string(), 0)
    }

    /// A float constant of shape `dims`, named `name` (a weight's checkpoint key) when no value
    /// has that name yet.
    pub fn constant(&self, name: &str, dims: &[usize], values: Vec<f32>) -> Value {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        let taken = self.g.borrow().constants.iter().any(|c| c.name == name);
        let name = if taken || name.contains('#') {
            self.fresh(name)
        } else {
            name.to_string()
        };
        self.g.borrow_mut().constants.push(pb::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: values,
            name: name.clone(),
            ..Default::default()
        });
        self.value(name, dims.get(1).copied().unwrap_or(0))
    }

    /// A scalar float constant.
    pub fn scalar(&self, v: f32) -> Value {
        self.constant("scalar", &[], vec![v])
    }

    /// An int64 vector constant (shapes, axes, slice bounds).
    pub fn ints(&self, values: &[i64]) -> Value {
        let name = self.fresh("ints");
        self.g.borrow_mut().constants.push(pb::TensorProto {
            dims: vec![values.len() as i64],
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            int64_data: values.to_vec(),
            name: name.clone(),
            ..Default::default()
        });
        self.value(name, 0)
    }

    /// Bytes of the weights so far (what bounds the file's size).
    pub fn constant_bytes(&self) -> usize {
        let g = self.g.borrow();
        g.constants
            .iter()
            .map(|c| 4 * c.float_data.len() + 8 * c.int64_data.len())
            .sum()
    }

    /// A name not used yet, from `hint` (`hint#n`: `#` never ends a checkpoint key).
    fn fresh(&self, hint: &str) -> String {
        let mut g = self.g.borrow_mut();
        g.next += 1;
        format!("{hint}#{}", g.next)
    }

    /// One node of `op` on `inputs`, its output having `cols` columns.
    pub fn op(&self, op: &str, inputs: &[&Value], attrs: Vec<(&str, Attr)>, cols: usize) -> Value {
        let name = self.fresh(op);
        let attribute = attrs
            .into_iter()
            .map(|(n, a)| {
                use pb::attribute_proto::AttributeType as T;
                let mut p = pb::AttributeProto {
                    name: n.to_string(),
                    ..Default::default()
                };
                match a {
                    Attr::Int(i) => (p.i, p.r#type) = (i, T::Int as i32),
                    Attr::Ints(v) => (p.ints, p.r#type) = (v, T::Ints as i32),
                    Attr::Float(f) => (p.f, p.r#type) = (f, T::Float as i32),
                }
                p
            })
            .collect();
        self.g.borrow_mut().nodes.push(pb::NodeProto {
            input: inputs.iter().map(|v| v.name.clone()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
        self.value(name, cols)
    }

    /// Make `v` a graph output named `name` (a float vector of rows).
    pub fn output(&self, v: &Value, name: &str) {
        let out = self.op("Identity", &[v], Vec::new(), v.cols);
        let mut g = self.g.borrow_mut();
        if let Some(node) = g.nodes.last_mut() {
            node.output = vec![name.to_string()];
        }
        let dims = vec![dim_param("batch")];
        g.outputs.push(value_info(name, Elem::F32, dims));
        drop(out);
    }

    /// The model file's bytes: the graph named `name`, with `doc` as its documentation and
    /// `metadata` as the model's key-value properties. The graph's contents move into the
    /// message (no second copy of the weights): it is empty afterwards.
    pub fn encode(&self, name: &str, doc: &str, metadata: &[(String, String)]) -> Vec<u8> {
        let g = std::mem::take(&mut *self.g.borrow_mut());
        let model = pb::ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "funnel".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| pb::StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            graph: Some(pb::GraphProto {
                node: g.nodes,
                name: name.into(),
                initializer: g.constants,
                input: g.inputs,
                output: g.outputs,
                ..Default::default()
            }),
            ..Default::default()
        };
        model.encode_to_vec()
    }
}

fn dim_param(name: &str) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimParam(
            name.into(),
        )),
        ..Default::default()
    }
}

fn dim_value(v: i64) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)),
        ..Default::default()
    }
}

fn value_info(
    name: &str,
    elem: Elem,
    dims: Vec<pb::tensor_shape_proto::Dimension>,
) -> pb::ValueInfoProto {
    let elem_type = match elem {
        Elem::F32 => pb::tensor_proto::DataType::Float,
        Elem::I64 => pb::tensor_proto::DataType::Int64,
    } as i32;
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: Some(pb::TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Value {
    pub fn graph(&self) -> Graph {
        Graph { g: self.g.clone() }
    }

    /// An element-wise op of this value and others (broadcasting), keeping this value's columns.
    fn elementwise(&self, op: &str, others: &[&Value]) -> Value {
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

/// The funnel's formulas over rows x columns values: each op composed of ONNX nodes that stay
/// finite where the naive form would overflow (ln σ(x) = min(x, 0) − ln(1 + e^−|x|)).
impl LogSpace for Value {
    type Error = std::convert::Infallible;

    fn log_sigmoid(&self) -> Result<Self, Self::Error> {
        let g = self.graph();
        let zero = g.scalar(0.0);
        let one = g.scalar(1.0);
        let tail = self
            .unary("Abs")
            .unary("Neg")
            .unary("Exp")
            .add(&one)
            .unary("Log");
        Ok(self.elementwise("Min", &[&zero]).sub(&tail))
    }

    fn neg(&self) -> Result<Self, Self::Error> {
        Ok(self.unary("Neg"))
    }

    fn add(&self, other: &Self) -> Result<Self, Self::Error> {
        Ok(Value::add(self, other))
    }

    fn log_add(&self, other: &Self) -> Result<Self, Self::Error> {
        let one = self.graph().scalar(1.0);
        let m = self.elementwise("Max", &[other]);
        let gap = self
            .sub(other)
            .unary("Abs")
            .unary("Neg")
            .unary("Exp")
            .add(&one)
            .unary("Log");
        Ok(m.add(&gap))
    }

    fn clipped_ratio(&self, parent: &Self) -> Result<Self, Self::Error> {
        let zero = self.graph().scalar(0.0);
        Ok(self.sub(parent).elementwise("Min", &[&zero]))
    }

    fn column(&self, c: usize) -> Result<Self, Self::Error> {
        Ok(self.columns(c, 1))
    }

    fn side_by_side(columns: &[Self]) -> Result<Self, Self::Error> {
        Ok(Value::concat(columns, 1))
    }

    fn over_ancestors(&self, funnel: &Funnel) -> Result<Self, Self::Error> {
        let m = funnel.ancestor_matrix();
        let k = funnel.len();
        let c = self.graph().constant("ancestors", &[k, k], m);
        Ok(self.matmul(&c, k))
    }

    fn of_parents(&self, funnel: &Funnel) -> Result<Self, Self::Error> {
        let m = funnel.parent_matrix();
        let k = funnel.len();
        let c = self.graph().constant("parents", &[k, k], m);
        Ok(self.matmul(&c, k))
    }
}
